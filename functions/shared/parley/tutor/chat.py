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
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from parley.ai.deadline import Deadline
from parley.ai.errors import ModelRefused, ProviderError, ProviderMisconfigured
from parley.ai.factory import build_provider
from parley.ai.metering import MeteredProvider
from parley.ai.types import AiAnswer, AiProvider, AiRequest, Turn
from parley.core.errors import Conflict, ServiceUnavailable
from parley.core.ids import new_ulid, utcnow
from parley.core.observability import logger
from parley.data import keys
from parley.data.store import Store
from parley.tutor.chat_models import ChatReply, ChatRequest, ChatSettings, ChatUsage
from parley.tutor.history import fit_history
from parley.tutor.models import Message, NewMessage, Session
from parley.tutor.persona import HISTORY_TRUNCATED_NOTE, TutorPersona, system_prompt
from parley.tutor.service import Tutor
from parley.tutor.translation import TranslationOut, Translator, saved
from parley.usage.publisher import UsagePublisher
from parley.usage.quota import QuotaGuard

MIN_CALL_SECONDS = 2.0  # don't start a model call with less time than this left
SAVE_ATTEMPTS = 4  # saving the reply: attempts while the store is busy (after botocore's own retries)
SAVE_BACKOFF_SECONDS = 0.1
SAVE_GRACE_SECONDS = 1.0  # of the time the handler keeps back after the deadline, what saving may use
PENDING_REPLY_TTL = timedelta(days=1)  # how long an unsaved reply waits for a repeat of its call
OnText = Callable[[str], None]  # a streamed turn's consumer of text deltas


# -- the turn ------------------------------------------------------------------------------------
def reply_id_for(message_id: str) -> str:
    """The reply's id, derived from the learner message's id (so a repeat finds it)."""
    return "reply-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]


def _usage(answer: AiAnswer) -> ChatUsage:
    u = answer.usage
    return ChatUsage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                     cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens)


@dataclasses.dataclass(eq=False)
class Chat:
    tutor: Tutor
    provider: AiProvider
    _: dataclasses.KW_ONLY
    publisher: UsagePublisher
    quota: QuotaGuard | None
    max_tokens: int
    temperature: float
    history_tokens: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def turn(self, owner: str, request: ChatRequest, *, deadline: float,
             on_text: OnText | None = None) -> ChatReply:
        """One chat turn; ``deadline`` is a ``clock()`` value by which the answer must be ready.

        The quota is checked first, before anything is saved: an owner over quota gets 429 and
        neither a saved message nor a model call. With ``on_text`` the model's answer is streamed:
        each text delta is given to it as it is generated (the streamed voice turn); the turn is
        otherwise the same - the engine still retries and falls back before the first delta, and
        the reply is saved and metered once. A replayed turn streams nothing (no model call)."""
        if request.session_id is not None and on_text is not None:  # the check overlaps the session's reads
            return self._session_turn(owner, request, request.session_id, deadline, on_text)
        if self.quota is not None:
            self.quota.check(owner)
        if request.session_id is None:
            return self._stateless_turn(owner, request, deadline, on_text)
        return self._session_turn(owner, request, request.session_id, deadline, on_text)

    # -- the two ways in -----------------------------------------------------------------------
    def _persona(self, base: TutorPersona, overrides: ChatSettings | None) -> TutorPersona:
        if overrides is None:
            return base
        return TutorPersona(tutor_name=overrides.tutor_name or base.tutor_name,
                            accent=overrides.accent or base.accent, level=overrides.level or base.level,
                            topic=overrides.topic or base.topic)

    def _stateless_turn(self, owner: str, request: ChatRequest, deadline: float,
                        on_text: OnText | None = None) -> ChatReply:
        saved = self.tutor.get_settings(owner)
        persona = self._persona(TutorPersona(saved.tutor_name, saved.accent, saved.level, saved.topic),
                                request.settings)
        history = [Turn(t.role, t.content) for t in request.messages or []]
        answer, sent, truncated = self._ask(owner, persona, history, request.message, deadline, on_text=on_text)
        translation = self._translate(owner, answer.text, saved.show_translation, saved.native_language)
        return ChatReply(reply=answer.text, engine=answer.engine, model=answer.model,
                         fallback_from=answer.fallback_from, usage=_usage(answer),
                         history_truncated=truncated, history_messages_sent=sent, translation=translation)

    def _session_turn(self, owner: str, request: ChatRequest, session_id: str, deadline: float,
                      on_text: OnText | None = None) -> ChatReply:
        if on_text is not None and self.quota is not None:
            # Streamed: the quota check (reads only) runs beside the session's reads, and is answered before
            # anything is saved or the model is called - so still a 429 with nothing saved and no model call.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-quota-check") as pool:
                checking = pool.submit(self.quota.check, owner)
                try:
                    session, history = self._session_and_history(owner, session_id)
                finally:
                    checking.result()
        else:
            session, history = self._session_and_history(owner, session_id)
        if session.status != "active":
            raise Conflict(f"Session {session_id!r} has ended; start a new session to keep talking.")
        persona = self._persona(TutorPersona(session.tutor_name, session.accent, session.level, session.topic),
                                request.settings)
        message_id = request.message_id or new_ulid()
        reply_id = reply_id_for(message_id)

        position = next((i for i, m in enumerate(history) if m.message_id == message_id), None)
        if position is not None:  # a repeat of a call that saved the learner's message
            learner = history[position]
            earlier = history[:position]
            saved_reply = next((m for m in history[position + 1:] if m.message_id == reply_id), None)
            if saved_reply is not None:
                return self._replayed(session_id, learner, saved_reply.content, saved_reply,
                                      self.tutor.reply_origin(owner, session_id, saved_reply),
                                      self._saved_translation(owner, saved_reply))
            kept = self._pending_reply(owner, session_id, reply_id)
            if kept is not None:  # answered before, but its save failed: save it now, no model call
                text, kept_origin = kept
                kept_reply = self._save_reply(owner, session_id, learner, text, reply_id, deadline, kept_origin)
                if kept_reply is not None:
                    self._forget_pending_reply(owner, session_id, reply_id)
                return self._replayed(session_id, learner, text, kept_reply, kept_origin,
                                      self._saved_translation(owner, None))
        else:
            new = NewMessage(role="user", content=request.message, message_id=message_id)
            earlier = history
            if on_text is not None:  # streamed: saved while the model starts, before any of its text is shown
                turns = [Turn(m.role, m.content) for m in earlier]
                return self._streamed_session_turn(owner, session_id, new, persona, turns, deadline, on_text)
            learner, _created = self.tutor.add_message(owner, session_id, new)

        turns = [Turn(m.role, m.content) for m in earlier]
        answer, sent, truncated = self._ask(owner, persona, turns, learner.content, deadline,
                                            saved_message_id=learner.message_id, on_text=on_text)
        return self._answered(owner, session_id, learner, reply_id, answer, sent, truncated, deadline)

    def _session_and_history(self, owner: str, session_id: str) -> tuple[Session, list[Message]]:
        session = self.tutor.get_session(owner, session_id)  # NotFound for a missing or foreign session
        return session, self.tutor.history(owner, session_id, known=True)

    def _streamed_session_turn(self, owner: str, session_id: str, new: NewMessage, persona: TutorPersona,
                               turns: list[Turn], deadline: float, on_text: OnText) -> ChatReply:
        """A streamed turn's new message: the learner's message is saved in a second thread while the model
        call starts (its first token takes far longer than the save), and the model's first text waits for
        the save - so no reply text is shown for a message that was not saved, and a failed save (the
        session ended meanwhile) stops the model's stream, metered for what it used."""
        assert new.message_id is not None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-save-learner") as pool:
            saving = pool.submit(self.tutor.add_message, owner, session_id, new)
            first = True

            def shown(delta: str) -> None:
                nonlocal first
                if first:
                    saving.result()
                    first = False
                on_text(delta)

            try:
                answer, sent, truncated = self._ask(owner, persona, turns, new.content, deadline,
                                                    saved_message_id=new.message_id, on_text=shown)
            finally:
                learner, _created = saving.result()  # saved (or its error) whatever the model did
        return self._answered(owner, session_id, learner, reply_id_for(new.message_id), answer, sent, truncated,
                              deadline)

    def _answered(self, owner: str, session_id: str, learner: Message, reply_id: str, answer: AiAnswer, sent: int,
                  truncated: bool, deadline: float) -> ChatReply:
        """Save the model's reply to a session turn, translate it when asked, and answer."""
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
        settings = self.tutor.get_settings(owner)
        translation = self._translate(owner, answer.text, settings.show_translation, settings.native_language)
        if translation is not None and translation.text and reply_message is not None:
            reply_message = self._save_translation(owner, session_id, reply_message, translation.text)
        return ChatReply(reply=answer.text, engine=answer.engine, model=answer.model,
                         fallback_from=answer.fallback_from, usage=_usage(answer), session_id=session_id,
                         message=learner, reply_message=reply_message, reply_saved=saved,
                         history_truncated=truncated, history_messages_sent=sent, translation=translation)

    def _replayed(self, session_id: str, learner: Message, text: str, reply_message: Message | None,
                  origin: dict[str, str | None], translation: TranslationOut | None = None) -> ChatReply:
        """A repeat's answer: the saved (or kept) reply, naming the engine and model that wrote it."""
        return ChatReply(reply=text, engine=origin.get("engine"), model=origin.get("model"),
                         usage=ChatUsage(input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0),
                         session_id=session_id, message=learner, reply_message=reply_message,
                         reply_saved=reply_message is not None, replayed=True, history_truncated=False,
                         history_messages_sent=0, translation=translation)

    # -- the translation -----------------------------------------------------------------------
    def _translate(self, owner: str, text: str, on: bool, language: str) -> TranslationOut | None:
        """One metered model call after the reply, when the learner's showTranslation is on."""
        if not on:
            return None
        return Translator(self.provider, self.publisher, self.quota).translate(owner, text, language)

    def _saved_translation(self, owner: str, reply: Message | None) -> TranslationOut | None:
        settings = self.tutor.get_settings(owner)
        if not settings.show_translation:
            return None
        return saved(settings.native_language, reply.translation if reply else None)

    def _save_translation(self, owner: str, session_id: str, reply: Message, text: str) -> Message:
        """The reply message with its translation saved on it (as it was, if the save fails: the answer still
        carries the translation)."""
        try:
            return self.tutor.set_translation(owner, session_id, reply, text)
        except (ServiceUnavailable, ClientError) as exc:
            logger.warning("The translation could not be saved on the reply", extra={
                "session_id": session_id, "error": type(exc).__name__})
            return reply

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
        return keys.pending_reply_sk(session_id, reply_id)

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
             *, saved_message_id: str | None = None, on_text: OnText | None = None) -> tuple[AiAnswer, int, bool]:
        request, truncated = self.build_request(persona, history, message)
        # turn() checked the quota before saving anything (an early 429); each model call still
        # reserves its bound, so concurrent turns cannot overshoot the limit by more than one call.
        metered = MeteredProvider(self.provider, owner=owner, product="tutor", operation="chat",
                                  publisher=self.publisher, quota=self.quota)
        if deadline - self.clock() < MIN_CALL_SECONDS:
            raise self._unavailable(ProviderError("No time left in this request to ask the model.",
                                                  engine=self.provider.engine), saved_message_id)
        timed = dataclasses.replace(request, deadline=Deadline(deadline, clock=self.clock, sleep=self.sleep))
        try:
            answer = metered.complete(timed) if on_text is None else _streamed(metered, timed, on_text)
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


def _streamed(metered: MeteredProvider, request: AiRequest, on_text: OnText) -> AiAnswer:
    """The answer of a streamed call, each text delta given to ``on_text`` as it comes. The stream is
    closed (and so metered for what it used) however this ends."""
    stream = metered.stream(request)
    answer: AiAnswer | None = None
    try:
        for item in stream:
            if isinstance(item, AiAnswer):
                answer = item
            elif item:
                on_text(item)
    finally:
        stream.close()
    if answer is None:
        raise ProviderError("The tutor's answer ended early; try again.", engine=metered.engine, retryable=True)
    return answer


def chat_from(env: Any, store: Store) -> Chat:
    """The tutor's chat turn configured from a function's environment (``parley.core.config.ChatEnv``):
    its history, quota reservation, engine fallback and idempotent save, for any entry point (the
    chat route, the action API's ``chat``)."""
    from parley.usage.publisher import publisher_from
    from parley.usage.quota import guard_from

    return Chat(Tutor(store, retention_days=env.data_retention_days), build_provider(env),
                publisher=publisher_from(env), quota=guard_from(env, store), max_tokens=env.chat_max_tokens,
                temperature=env.anthropic_temperature, history_tokens=env.chat_history_tokens)
