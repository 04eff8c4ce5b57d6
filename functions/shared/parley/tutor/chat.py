"""The tutor's AI turn (seed 000's ``chat`` action): one learner message in, one tutor reply out.

Two ways to give the conversation so far:

- ``sessionId``: the history is read from the table (strongly consistent) and both the learner's
  message and the reply are saved as the session's next messages, so a client needs one call per
  turn. The learner's message is saved BEFORE the model call (so it is never lost) and the reply
  after; both carry ids derived from the client's ``messageId``, so repeating a call changes
  nothing: a repeated call whose reply was saved gets that reply back without a model call, and
  one whose reply was not (the model failed) asks the model again — never half a turn twice.
  Saving the reply is retried while the store is busy; if it stays busy the answer still carries
  the reply, marked ``replySaved: false``, and the reply is kept aside (one plain write, a day): a
  repeat of the call saves that reply instead of paying the model again.
- ``messages``: an explicit history; nothing is saved.

Cost stays bounded however long a session runs: the messages sent are cut to a token budget by
dropping the oldest turns — in steps of several turns, so the prefix the engine caches stays the
same for a while instead of changing on every turn — and the response says when it happened.

The model call carries the function's deadline: the provider layer retries throttling and overload
and falls back within it, so the caller gets the reply or, when no engine can answer in time, a 503
with a clear body before the function's limit. A reply the model declines to give (``refusal``) is a
422 ``AI_REFUSED`` at once: not retried, billed once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Annotated, Any

from botocore.exceptions import ClientError
from pydantic import Field, StringConstraints, model_validator

from parley.ai.caching import estimate_tokens
from parley.ai.deadline import Deadline
from parley.ai.factory import build_provider
from parley.ai.metering import MeteredProvider
from parley.ai.types import AiAnswer, AiProvider, AiRequest, ModelRefused, ProviderError, ProviderMisconfigured, Turn
from parley.core.errors import Conflict, ServiceUnavailable
from parley.core.ids import new_ulid, utcnow
from parley.core.observability import logger
from parley.data import keys
from parley.data.store import Store
from parley.tutor.models import (
    Accent,
    ApiModel,
    ClientId,
    Level,
    Message,
    MessageText,
    NewMessage,
    Role,
    Topic,
    TutorName,
)
from parley.tutor.persona import HISTORY_TRUNCATED_NOTE, TutorPersona, system_prompt
from parley.tutor.service import Tutor
from parley.usage.publisher import UsagePublisher
from parley.usage.quota import QuotaGuard

SessionId = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]
MAX_HISTORY_MESSAGES = 200
WINDOW_STEP_TURNS = 4  # the history window's start moves by this many learner turns at a time
MIN_CALL_SECONDS = 2.0  # don't start a model call with less time than this left
SAVE_ATTEMPTS = 4  # saving the reply: attempts while the store is busy (after botocore's own retries)
SAVE_BACKOFF_SECONDS = 0.1
SAVE_GRACE_SECONDS = 1.0  # of the time the handler keeps back after the deadline, what saving may use
PENDING_REPLY_TTL = timedelta(days=1)  # how long an unsaved reply waits for a repeat of its call


# -- API models ----------------------------------------------------------------------------------
class ChatSettings(ApiModel):
    """Overrides for this turn; omitted fields come from the session (or the saved settings)."""

    accent: Accent | None = None
    level: Level | None = None
    topic: Topic | None = None
    tutor_name: TutorName | None = None


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


# -- the history budget --------------------------------------------------------------------------
def fit_history(history: Sequence[Turn], new_message: str, budget_tokens: int,
                step: int = WINDOW_STEP_TURNS) -> tuple[list[Turn], bool]:
    """The most recent part of ``history`` that fits, with the new message, in ``budget_tokens``.

    The window starts at the beginning or at a learner turn. Its start moves in steps of ``step`` learner turns
    so that the same prefix (system prompt + the window's first turns) is sent for several turns
    in a row and stays cacheable; only when even that does not fit is the cut made at any turn.
    Returns (turns to send, whether anything was left out).
    """
    room = budget_tokens - estimate_tokens(new_message)
    sizes = [estimate_tokens(t.text) for t in history]
    suffix = [0] * (len(history) + 1)
    for i in range(len(history) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + sizes[i]
    starts = [i for i, t in enumerate(history) if i == 0 or t.role == "user"]
    for candidates in (starts[::step], starts):
        for i in candidates:
            if suffix[i] <= room:
                return list(history[i:]), i > 0
    return [], bool(history)


# -- the turn ------------------------------------------------------------------------------------
def reply_id_for(message_id: str) -> str:
    """The reply's id, derived from the learner message's id (so a repeat finds it)."""
    return "reply-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]


def _usage(answer: AiAnswer) -> ChatUsage:
    u = answer.usage
    return ChatUsage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                     cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens)


class Chat:
    def __init__(self, tutor: Tutor, provider: AiProvider, *, publisher: UsagePublisher, quota: QuotaGuard | None,
                 max_tokens: int, temperature: float, history_tokens: int,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.tutor = tutor
        self.provider = provider
        self.publisher = publisher
        self.quota = quota
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.history_tokens = history_tokens
        self.clock = clock
        self.sleep = sleep

    def turn(self, owner: str, request: ChatRequest, *, deadline: float) -> ChatReply:
        """One chat turn; ``deadline`` is a ``clock()`` value by which the answer must be ready.

        The quota is checked first, before anything is saved: an owner over quota gets 429 and
        neither a saved message nor a model call."""
        if self.quota is not None:
            self.quota.check(owner)
        if request.session_id is None:
            return self._stateless_turn(owner, request, deadline)
        return self._session_turn(owner, request, request.session_id, deadline)

    # -- the two ways in -----------------------------------------------------------------------
    def _persona(self, base: TutorPersona, overrides: ChatSettings | None) -> TutorPersona:
        if overrides is None:
            return base
        return TutorPersona(tutor_name=overrides.tutor_name or base.tutor_name,
                            accent=overrides.accent or base.accent, level=overrides.level or base.level,
                            topic=overrides.topic or base.topic)

    def _stateless_turn(self, owner: str, request: ChatRequest, deadline: float) -> ChatReply:
        saved = self.tutor.get_settings(owner)
        persona = self._persona(TutorPersona(saved.tutor_name, saved.accent, saved.level, saved.topic),
                                request.settings)
        history = [Turn(t.role, t.content) for t in request.messages or []]
        answer, sent, truncated = self._ask(owner, persona, history, request.message, deadline)
        return ChatReply(reply=answer.text, engine=answer.engine, model=answer.model,
                         fallback_from=answer.fallback_from, usage=_usage(answer),
                         history_truncated=truncated, history_messages_sent=sent)

    def _session_turn(self, owner: str, request: ChatRequest, session_id: str, deadline: float) -> ChatReply:
        session = self.tutor.get_session(owner, session_id)  # NotFound for a missing or foreign session
        if session.status != "active":
            raise Conflict(f"Session {session_id!r} has ended; start a new session to keep talking.")
        persona = self._persona(TutorPersona(session.tutor_name, session.accent, session.level, session.topic),
                                request.settings)
        history = self.tutor.history(owner, session_id)
        message_id = request.message_id or new_ulid()
        reply_id = reply_id_for(message_id)

        position = next((i for i, m in enumerate(history) if m.message_id == message_id), None)
        if position is not None:  # a repeat of a call that saved the learner's message
            learner = history[position]
            earlier = history[:position]
            saved_reply = next((m for m in history[position + 1:] if m.message_id == reply_id), None)
            if saved_reply is not None:
                return self._replayed(session_id, learner, saved_reply.content, saved_reply,
                                      self.tutor.reply_origin(owner, session_id, saved_reply))
            kept = self._pending_reply(owner, session_id, reply_id)
            if kept is not None:  # answered before, but its save failed: save it now, no model call
                text, kept_origin = kept
                kept_reply = self._save_reply(owner, session_id, learner, text, reply_id, deadline, kept_origin)
                if kept_reply is not None:
                    self._forget_pending_reply(owner, session_id, reply_id)
                return self._replayed(session_id, learner, text, kept_reply, kept_origin)
        else:
            learner, _created = self.tutor.add_message(owner, session_id, NewMessage(
                role="user", content=request.message, message_id=message_id))
            earlier = history

        turns = [Turn(m.role, m.content) for m in earlier]
        answer, sent, truncated = self._ask(owner, persona, turns, learner.content, deadline,
                                            saved_message_id=learner.message_id)
        reply_message: Message | None = None
        try:
            origin: dict[str, str | None] = {"engine": answer.engine, "model": answer.model}
            reply_message = self._save_reply(owner, session_id, learner, answer.text, reply_id, deadline, origin)
            if reply_message is None:  # the store stayed busy: keep it for a repeat of this call
                self._keep_pending_reply(owner, session_id, reply_id, answer.text, origin)
        except Conflict:
            logger.warning("Session ended while the tutor was answering; reply not saved",
                           extra={"session_id": session_id})
        saved = reply_message is not None
        return ChatReply(reply=answer.text, engine=answer.engine, model=answer.model,
                         fallback_from=answer.fallback_from, usage=_usage(answer), session_id=session_id,
                         message=learner, reply_message=reply_message, reply_saved=saved,
                         history_truncated=truncated, history_messages_sent=sent)

    def _replayed(self, session_id: str, learner: Message, text: str, reply_message: Message | None,
                  origin: dict[str, str | None]) -> ChatReply:
        """A repeat's answer: the saved (or kept) reply, naming the engine and model that wrote it."""
        return ChatReply(reply=text, engine=origin.get("engine"), model=origin.get("model"),
                         usage=ChatUsage(input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0),
                         session_id=session_id, message=learner, reply_message=reply_message,
                         reply_saved=reply_message is not None, replayed=True, history_truncated=False,
                         history_messages_sent=0)

    # -- saving the reply ----------------------------------------------------------------------
    def _save_reply(self, owner: str, session_id: str, learner: Message, text: str, reply_id: str,
                    deadline: float, origin: dict[str, str | None]) -> Message | None:
        """Save the reply as the session's next message, retrying a busy store with backoff while
        the request's time allows; None if it stays busy. ``Conflict`` if the session has ended."""
        for attempt in range(SAVE_ATTEMPTS):
            try:
                message, _ = self.tutor.add_message(owner, session_id, NewMessage(
                    role="assistant", content=text[:4000], turn_number=learner.turn_number, message_id=reply_id),
                    origin={k: v for k, v in origin.items() if v})
                return message
            except ServiceUnavailable:
                delay = SAVE_BACKOFF_SECONDS * 2 ** attempt * (0.5 + random.random() / 2)  # noqa: S311 - jitter
                if attempt + 1 >= SAVE_ATTEMPTS or self.clock() + delay > deadline + SAVE_GRACE_SECONDS:
                    break
                self.sleep(delay)
        logger.warning("The reply could not be saved; it is returned unsaved", extra={"session_id": session_id})
        return None

    @staticmethod
    def _pending_sk(session_id: str, reply_id: str) -> str:
        # Under the session's keys, so deleting the session deletes it too.
        return f"{keys.SESSION_PREFIX}{session_id}#PENDINGREPLY#{reply_id}"

    def _keep_pending_reply(self, owner: str, session_id: str, reply_id: str, text: str,
                            origin: dict[str, str | None]) -> None:
        """Keep a reply whose save failed (one plain write, no transaction), so a repeat of the call
        saves it instead of paying the model again. Best effort: if even this fails, a repeat asks
        the model again."""
        expires = int((utcnow() + PENDING_REPLY_TTL).timestamp())
        try:
            self.tutor.store.put({"PK": owner, "SK": self._pending_sk(session_id, reply_id), "type": "PENDING_REPLY",
                                  "sessionId": session_id, "content": text[:4000], "expiresAt": expires,
                                  **{f"origin{k.capitalize()}": v for k, v in origin.items() if v}})
        except (ServiceUnavailable, ClientError) as exc:
            logger.warning("The unsaved reply could not be kept either; a repeat asks the model again",
                           extra={"session_id": session_id, "error": type(exc).__name__})

    def _pending_reply(self, owner: str, session_id: str,
                       reply_id: str) -> tuple[str, dict[str, str | None]] | None:
        """A kept reply and the engine and model that wrote it."""
        item = self.tutor.store.get(owner, self._pending_sk(session_id, reply_id))
        if not item or int(item.get("expiresAt", 0)) <= utcnow().timestamp():
            return None
        return str(item["content"]), {"engine": item.get("originEngine"), "model": item.get("originModel")}

    def _forget_pending_reply(self, owner: str, session_id: str, reply_id: str) -> None:
        with contextlib.suppress(ServiceUnavailable, ClientError):  # else it expires; the saved reply comes first
            self.tutor.store.delete(owner, self._pending_sk(session_id, reply_id))

    # -- the model call ------------------------------------------------------------------------
    def build_request(self, persona: TutorPersona, history: Sequence[Turn], message: str) -> tuple[AiRequest, bool]:
        window, truncated = fit_history(history, message, self.history_tokens)
        system = system_prompt(persona) + ((HISTORY_TRUNCATED_NOTE,) if truncated else ())
        request = AiRequest(system=system, messages=(*window, Turn("user", message)), purpose="chat",
                            max_tokens=self.max_tokens, temperature=self.temperature)
        return request, truncated

    def _ask(self, owner: str, persona: TutorPersona, history: Sequence[Turn], message: str, deadline: float,
             *, saved_message_id: str | None = None) -> tuple[AiAnswer, int, bool]:
        request, truncated = self.build_request(persona, history, message)
        # turn() checked the quota before saving anything (an early 429); each model call still
        # reserves its bound, so concurrent turns cannot overshoot the limit by more than one call.
        metered = MeteredProvider(self.provider, owner=owner, product="tutor", operation="chat",
                                  publisher=self.publisher, quota=self.quota)
        if deadline - self.clock() < MIN_CALL_SECONDS:
            raise self._unavailable(ProviderError("No time left in this request to ask the model.",
                                                  engine=self.provider.engine), saved_message_id)
        try:
            answer = metered.complete(dataclasses.replace(
                request, deadline=Deadline(deadline, clock=self.clock, sleep=self.sleep)))
        except ProviderError as exc:
            raise self._unavailable(exc, saved_message_id) from exc
        if answer.refused:
            saved = " Your message was saved; rephrase it and send a new one." if saved_message_id else ""
            refused = ModelRefused(f"The tutor declined to answer this message.{saved}",
                                   details=[{"engine": answer.engine, **({"messageId": saved_message_id}
                                                                          if saved_message_id else {})}])
            raise refused
        if not answer.text.strip():
            raise ProviderError("The tutor's answer was empty; try again.", engine=answer.engine, retryable=True)
        answer = dataclasses.replace(answer, text=answer.text.strip())
        return answer, len(request.messages) - 1, truncated

    @staticmethod
    def _unavailable(exc: ProviderError, saved_message_id: str | None) -> ProviderError:
        """The 503 the learner gets: what failed, and that their message is safe."""
        saved = " Your message was saved; send it again with the same messageId for the reply." \
            if saved_message_id else ""
        unavailable: ProviderError
        if isinstance(exc, ProviderMisconfigured):
            unavailable = ProviderMisconfigured(f"The tutor cannot answer: {exc.message}{saved}", engine=exc.engine,
                                                model=exc.model, operator_action=exc.operator_action,
                                                status=exc.upstream_status)
        else:
            unavailable = ProviderError(f"The tutor cannot answer right now ({exc.engine}: {exc.message}).{saved}",
                                        engine=exc.engine, retryable=exc.retryable, status=exc.upstream_status)
        unavailable.details = [{"engine": exc.engine, **({"messageId": saved_message_id}
                                                         if saved_message_id else {})}]
        unavailable.headers = {"Retry-After": "5"}
        return unavailable


def chat_from(env: Any, store: Store) -> Chat:
    """The tutor's chat turn configured from a function's environment (``parley.core.config.ChatEnv``):
    its history, quota reservation, engine fallback and idempotent save, for any entry point (the
    chat route, the action API's ``chat``)."""
    from parley.usage.publisher import publisher_from
    from parley.usage.quota import guard_from

    return Chat(Tutor(store, retention_days=env.data_retention_days), build_provider(env),
                publisher=publisher_from(env), quota=guard_from(env, store), max_tokens=env.chat_max_tokens,
                temperature=env.anthropic_temperature, history_tokens=env.chat_history_tokens)
