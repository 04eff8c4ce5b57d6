"""The requests of the action API: one model per action, in the original backend's shapes.

Requests are lenient about keys Parley does not use (the original clients send ``deviceId``,
``userId``, ``timestamp`` ...) and strict about the values of the keys it does use: a bad value is
a 422 naming the field, never silently replaced by a default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator

from parley.core.models import ClientId
from parley.speech.transcription.audio import AudioFormat, TranscribeLanguage
from parley.speech.voices import MAX_TEXT_CHARS as MAX_SPEECH_CHARS
from parley.tutor.chat_models import MAX_HISTORY_MESSAGES, ChatRequest
from parley.tutor.models import (
    MAX_MESSAGE_CHARS,
    Accent,
    Gender,
    Level,
    MessageText,
    Role,
    SpeechRate,
    Topic,
    TutorName,
)

# A session: Parley's id (a ULID) or the client's own (``clientSessionId``); both have this shape.
SessionRef = ClientId


class _ActionIn(BaseModel):
    # extra="ignore": the seed's clients send keys Parley has no use for (deviceId, userId, timestamp).
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class ActionSettings(_ActionIn):
    """The original tutor backend's settings. Every value is accepted in any letter case (its clients send
    ``us``, ``Advanced``, ``Business``) and answered in Parley's one spelling (``US``, ``advanced``)."""

    accent: Accent | None = None
    gender: Gender | None = None
    speed: SpeechRate | None = None
    level: Level | None = None
    topic: Topic | None = None
    tutor_name: TutorName | None = Field(None, alias="tutorName")

    def overrides(self) -> dict[str, Any]:
        """The given values under Parley's ``Settings`` field names."""
        values = {"accent": self.accent, "gender": self.gender, "speech_rate": self.speed, "level": self.level,
                  "topic": self.topic, "tutor_name": self.tutor_name}
        return {k: v for k, v in values.items() if v is not None}


class ActionTurn(_ActionIn):
    """One message of a conversation; the original backend's analysis also took ``speaker``/``en``."""

    role: Role
    content: MessageText

    @model_validator(mode="before")
    @classmethod
    def _seed_spellings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "role" not in data and "speaker" in data:
                data["role"] = data["speaker"]
            if "content" not in data and "en" in data:
                data["content"] = data["en"]
        return data


Turns = Annotated[list[ActionTurn], Field(max_length=MAX_HISTORY_MESSAGES + 1)]


class ActionMessageIn(_ActionIn):
    role: Role
    content: MessageText
    translation: Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)] | None = None
    turn_number: int | None = Field(None, alias="turnNumber", ge=0, le=100_000)
    message_id: ClientId | None = Field(None, alias="messageId")


class ChatAction(_ActionIn):
    action: Literal["chat"]
    messages: Turns = Field(default_factory=list, description="The whole conversation, oldest first; the last "
                                                              "message is the learner's new one.")
    settings: ActionSettings | None = None


class TtsAction(_ActionIn):
    action: Literal["tts"]
    text: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    settings: ActionSettings | None = None


class SttAction(_ActionIn):
    action: Literal["stt"]
    audio: str = Field(min_length=1, description="The recording, base64 (WebM from the browser, or Ogg/WAV/MP3/M4A)")
    language: TranscribeLanguage = "en-US"
    format: AudioFormat | None = None
    session_id: SessionRef | None = Field(None, alias="sessionId", description="Keep the transcript with this session")


class AnalyzeAction(_ActionIn):
    action: Literal["analyze"]
    session_id: SessionRef | None = Field(None, alias="sessionId", description="Analyse this saved session")
    messages: Turns | None = Field(None, description="Without sessionId: the conversation to analyse")
    settings: ActionSettings | None = None

    @model_validator(mode="after")
    def _something_to_analyse(self) -> AnalyzeAction:
        if self.session_id is None and not self.messages:
            raise ValueError("send sessionId (a saved session) or messages (the conversation) to analyse")
        return self


class SaveSettingsAction(_ActionIn):
    action: Literal["save_settings"]
    settings: ActionSettings


class GetSettingsAction(_ActionIn):
    action: Literal["get_settings"]


class StartSessionAction(_ActionIn):
    action: Literal["start_session"]
    session_id: ClientId | None = Field(None, alias="sessionId", description="The client's own id for the session")
    settings: ActionSettings | None = None
    tutor_name: TutorName | None = Field(None, alias="tutorName")


class EndSessionAction(_ActionIn):
    action: Literal["end_session"]
    session_id: SessionRef = Field(alias="sessionId")
    # The seed's clients send their own counts; Parley measures these from the saved messages.
    duration: int | None = None
    turn_count: int | None = Field(None, alias="turnCount")
    word_count: int | None = Field(None, alias="wordCount")


class SaveMessageAction(_ActionIn):
    action: Literal["save_message"]
    session_id: SessionRef = Field(alias="sessionId")
    message: ActionMessageIn


class GetSessionsAction(_ActionIn):
    action: Literal["get_sessions"]
    limit: int = Field(10, ge=1, le=100)
    last_key: Annotated[str, StringConstraints(max_length=2048)] | None = Field(None, alias="lastKey")


class GetSessionDetailAction(_ActionIn):
    action: Literal["get_session_detail"]
    session_id: SessionRef = Field(alias="sessionId")


class DeleteSessionAction(_ActionIn):
    action: Literal["delete_session"]
    session_id: SessionRef = Field(alias="sessionId")


class GetTranscribeUrlAction(_ActionIn):
    action: Literal["get_transcribe_url"]
    language: TranscribeLanguage = "en-US"
    sample_rate: int = Field(16000, alias="sampleRate", ge=8000, le=48000)


ActionRequest = Annotated[
    ChatAction | TtsAction | SttAction | AnalyzeAction | SaveSettingsAction | GetSettingsAction | StartSessionAction
    | EndSessionAction | SaveMessageAction | GetSessionsAction | GetSessionDetailAction | DeleteSessionAction
    | GetTranscribeUrlAction,
    Field(discriminator="action"),
]
ACTIONS: tuple[str, ...] = (
    "chat", "tts", "stt", "analyze", "save_settings", "get_settings", "start_session", "end_session",
    "save_message", "get_sessions", "get_session_detail", "delete_session", "get_transcribe_url",
)


def _body_kind(value: Any) -> str:
    return "action" if isinstance(value, dict) and "action" in value else "message"


# POST /chat's body: Parley's own chat request, or (when the body has an ``action``) the envelope.
ChatBody = Annotated[
    Annotated[ChatRequest, Tag("message")] | Annotated[ActionRequest, Tag("action")],
    Discriminator(_body_kind),
]

