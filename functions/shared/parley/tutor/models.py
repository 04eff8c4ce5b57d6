"""API models of the speaking tutor (seed 000): settings, sessions, messages.

JSON is camelCase; unknown fields are refused (a typo must not be silently ignored). Enum values
are accepted in any letter case and answered in one spelling (``spelled_any_case``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from parley.core.models import ApiModel, ClientId, spelled_any_case

# The tutor's enums: accepted in any letter case, answered in exactly these spellings, on every route
# and in both APIs (docs/api/tutor.md).
Accent = Annotated[Literal["US", "UK", "AU", "IN"], spelled_any_case("US", "UK", "AU", "IN")]
Gender = Annotated[Literal["female", "male"], spelled_any_case("female", "male")]
Level = Annotated[Literal["beginner", "intermediate", "advanced"],
                  spelled_any_case("beginner", "intermediate", "advanced")]
Topic = Annotated[Literal["business", "daily", "travel", "interview"],
                  spelled_any_case("business", "daily", "travel", "interview")]
Role = Annotated[Literal["user", "assistant"], spelled_any_case("user", "assistant")]
SessionStatus = Literal["active", "completed"]
SpeechRate = Annotated[Literal["slow", "normal", "fast"], spelled_any_case("slow", "normal", "fast")]

TutorName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]
MAX_MESSAGE_CHARS = 4000
MessageText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)]


class Settings(ApiModel):
    """A learner's preferences; every field has the default a new learner gets."""

    accent: Accent = "US"
    gender: Gender = "female"
    level: Level = "intermediate"
    topic: Topic = "daily"
    tutor_name: TutorName = "Emma"
    speech_rate: SpeechRate = "normal"
    show_translation: bool = False
    auto_play_voice: bool = True
    native_language: LanguageTag = "ko"


class SettingsOut(Settings):
    updated_at: str | None = Field(None, description="When the settings were last saved; null for defaults.")


class TutorChoices(ApiModel):
    """Who the learner talks to, and about what; an omitted field keeps what is already chosen."""

    tutor_name: TutorName | None = None
    topic: Topic | None = None
    accent: Accent | None = None
    level: Level | None = None


class StartSession(TutorChoices):
    """Start a conversation. Omitted fields are taken from the learner's saved settings."""

    gender: Gender | None = None
    client_session_id: ClientId | None = Field(
        None, description="Client-chosen id (e.g. a UUID the app made): starting again with the same id returns "
                          "the session started the first time, and the action envelope accepts it wherever a "
                          "sessionId goes.")


class Session(ApiModel):
    session_id: str
    client_session_id: str | None = Field(None, description="The client's own id for this session, if it gave one.")
    tutor_name: str
    topic: Topic
    accent: Accent
    level: Level
    gender: Gender
    status: SessionStatus
    started_at: str
    ended_at: str | None = None
    duration: int | None = Field(None, description="Seconds from start to end once ended; null while active.")
    turn_count: int = Field(0, description="Learner turns (user messages) so far.")
    word_count: int = Field(0, description="Words the learner has written or spoken so far.")
    last_message_at: str | None = None


class NewMessage(ApiModel):
    role: Role
    content: MessageText
    translation: Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)] | None = None
    turn_number: int | None = Field(None, ge=0, le=100_000, description="Defaults to the next turn.")
    message_id: ClientId | None = Field(
        None, description="Client-chosen id; saving again with the same id returns the first save.")


class Message(ApiModel):
    message_id: str
    role: Role
    content: str
    translation: str | None = None
    turn_number: int
    created_at: str


class SessionDetail(Session):
    messages: list[Message]


class SessionPage(ApiModel):
    items: list[Session]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= to get the next page; null on the last.")
