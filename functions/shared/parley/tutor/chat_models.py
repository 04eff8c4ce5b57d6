"""The API models of the tutor's chat turn (``POST /chat``, the action API's ``chat``, the streamed
voice turn): the request, its settings and history, and the answer (``parley.tutor.chat.Chat``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from parley.tutor.models import (
    ApiModel,
    ClientId,
    Message,
    MessageText,
    Role,
    TutorChoices,
)
from parley.tutor.translation import TranslationOut

SessionId = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]
MAX_HISTORY_MESSAGES = 200



class ChatSettings(TutorChoices):
    """Overrides for this turn; omitted fields come from the session (or the saved settings)."""


class ChatTurn(ApiModel):
    role: Role
    content: MessageText


class ChatRequest(ApiModel):
    message: MessageText = Field(description="The learner's new message.")
    session_id: SessionId | None = Field(
        None, description="Continue this session: history from the table, both messages saved.")
    message_id: ClientId | None = Field(
        None, description="Client id of the learner's message (with sessionId): repeating the call is safe.")
    messages: list[ChatTurn] | None = Field(
        None, max_length=MAX_HISTORY_MESSAGES, description="Explicit history, oldest first (without sessionId).")
    settings: ChatSettings | None = None

    @model_validator(mode="after")
    def _one_history_source(self) -> ChatRequest:
        if self.session_id is not None and self.messages is not None:
            raise ValueError("send either sessionId (history from the session) or messages, not both")
        if self.message_id is not None and self.session_id is None:
            raise ValueError("messageId is only meaningful with sessionId (the message is saved there)")
        return self


class ChatUsage(ApiModel):
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


class ChatReply(ApiModel):
    reply: str
    engine: str | None = Field(description="The engine that really answered: anthropic, bedrock or offline "
                                           "(a replayed answer names the one that wrote it).")
    model: str | None = Field(description="The model that answered (for a replayed answer, the one that wrote it).")
    fallback_from: str | None = Field(None, description="The engine that failed first, when a fallback answered.")
    usage: ChatUsage
    session_id: str | None = None
    message: Message | None = Field(None, description="The learner's message as saved (with sessionId).")
    reply_message: Message | None = Field(None, description="The reply as saved (with sessionId).")
    replayed: bool = Field(False, description="True when this messageId was answered before: no new model call.")
    reply_saved: bool = Field(True, description=(
        "False when the reply could not be saved in the session (the data store stayed busy): the learner's "
        "message is saved, the reply is only in this answer. Send the same call again (same messageId) to "
        "save it: the tutor's reply is reused, not asked again."))
    history_truncated: bool = Field(False, description="True when the oldest turns were left out to fit the budget.")
    history_messages_sent: int = Field(description="How many earlier messages were sent to the model.")
    translation: TranslationOut | None = Field(None, description=(
        "The reply in the learner's nativeLanguage, when their showTranslation setting is on (null when off). "
        "With sessionId it is also saved on the reply message (replyMessage.translation)."))
