"""The streamed tutor turn (WebSocket route ``tutorTurn``): the reply's text as it is generated, and
each sentence's speech as soon as that sentence is written, while the model writes the next one.

One learner message in (its final transcript, or typed text); out, in order, on the connection:
``accepted``; ``text`` frames (the reply as generated); ``audio`` frames (each sentence's MP3 in the
session's voice, base64, in parts under the frame limit) - sentence *k*'s audio always after the
text that completes it; ``translation`` (when the learner's ``showTranslation`` is on); ``complete``
with the saved turn (the ``POST /chat`` answer). See docs/voice-turn.md for the protocol.

The turn is ``POST /chat``'s (``parley.tutor.chat.Chat``) with the answer streamed: the same
bounded history, quota check before anything is saved (429 ``QUOTA_EXCEEDED`` before any model
call), reservation and one usage event per model call, fallback before the first token, and
idempotency by ``messageId`` (a resend replays the saved reply - text, then freshly synthesised
audio - with no model call). Each sentence's speech is a ``Speaker.speak``: reserved, one Polly call,
one usage event, exactly as ``POST /speech``.

Speech overlaps generation: sentences go to a worker thread through a queue, in order, while the
model stream goes on in the invocation's own thread. A client that disconnects (410
``GoneException`` on a post) gets nothing more: the model's answer is still completed and saved (a
resend replays it), no further sentence is synthesised, and what was used is metered.

It runs inside the route's own invocation (no asynchronous hop: the first audio is earlier by an
invocation's start). API Gateway ends the route's integration after 29 s, but that does not stop
the function, which posts through the ``@connections`` API; the turn keeps within ``turn_seconds``
(25 s) anyway, so the client never sees the integration's timeout message for a normal turn.

Its parts: the frames (``parley.tutor.voice_frames``), the speech worker and its metering
(``parley.tutor.voice_speech``), the timings (``parley.tutor.voice_metrics``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from parley.core import jsonlimits
from parley.core.errors import ParleyError, ServiceUnavailable
from parley.core.models import ApiModel, ClientId
from parley.core.observability import logger
from parley.data.turns import TurnClaims
from parley.proofreading.connections import Connections
from parley.proofreading.frames import Channel, error_message, invalid_message, request_id_of
from parley.speech.voices import Speaker
from parley.tutor.chat import Chat
from parley.tutor.chat_models import ChatReply, ChatRequest, SessionId
from parley.tutor.models import Accent, Gender, MessageText
from parley.tutor.sentences import SentenceSplitter, split_sentences
from parley.tutor.voice_frames import Sink, TextFrames, send_complete
from parley.tutor.voice_metrics import Emit, emit_timing
from parley.tutor.voice_speech import AfterAudioPublisher, SpeechWorker, TurnQuota
from parley.usage.ratelimit import RateLimiter

CLAIM_POLL_SECONDS = 0.25  # how often a resend looks whether the turn's first invocation has finished
RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class TutorTurnMessage(ApiModel):
    """The client's one message of a streamed turn."""

    action: Literal["tutorTurn"]
    request_id: RequestId | None = Field(None, description="Echoed in every frame about this turn.")
    session_id: SessionId
    message_id: ClientId = Field(description="The learner message's client id: the turn's idempotency key.")
    text: MessageText = Field(description="The learner's final transcript, or typed text.")
    input_mode: Literal["voice", "text"] | None = Field(None, description="Recorded for metrics only.")


_MESSAGE: TypeAdapter[TutorTurnMessage] = TypeAdapter(TutorTurnMessage)


# -- the turn ----------------------------------------------------------------------------------------
@dataclass
class VoiceTurn:
    connections: Connections
    chat: Chat
    speaker: Speaker
    limiter: RateLimiter | None = None
    claims: TurnClaims | None = None
    emit: Emit = emit_timing
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def handle(self, connection_id: str, body: str | None, channel: Channel, *, deadline: float) -> None:
        started = self.clock()
        owner = self.connections.owner_of(connection_id)
        if owner is None:
            channel.send(error_message(None, "UNAUTHORIZED", "This connection is not registered (expired or never "
                                                             "authorised); reconnect."))
            return
        message = self._parse(body, channel)
        if message is None:
            return
        rid = message.request_id
        sink = Sink(channel, rid, on_gone=lambda: self.connections.close(connection_id))
        try:
            first_claim = self._start(owner, message, sink)
            if first_claim is None:
                return  # throttled, or gone before anything started: nothing saved, nothing billed
            self._turn(owner, message, sink, started, deadline, first_claim)
        except ParleyError as exc:
            sink.send(_error(exc.message, exc.code, exc.details))
        except Exception:
            logger.exception("Streamed turn failed")
            sink.send(_error("Something went wrong on our side. Send the turn again with the same messageId: "
                             "what was saved is kept.", "INTERNAL_ERROR"))

    def _start(self, owner: str, message: TutorTurnMessage, sink: Sink) -> bool | None:
        """The rate limit, the accepted frame, and the turn's claim beside them (a write beside a write): whether
        this invocation holds the claim, or None when the turn is not to run (the claim is then given back)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-turn-claim") as pool:
            claiming = pool.submit(self.claims.claim, owner, message.session_id, message.message_id) \
                if self.claims is not None else None
            try:
                run = not self._throttled(owner, sink) and sink.send(
                    {"type": "accepted", "messageId": message.message_id})
            except BaseException:
                run = False
                raise
            finally:
                claimed = claiming is not None and claiming.result()
                if claimed and not run:
                    self._release(owner, message)
        return claimed if run else None

    def _throttled(self, owner: str, sink: Sink) -> bool:
        if self.limiter is None:
            return False
        decision = self.limiter.hit(owner, "ws")
        if decision.allowed:
            return False
        sink.send(_error(f"More than {decision.limit} messages a minute; this one was not acted on. "
                         f"Retry in {decision.retry_after} s.", "THROTTLED",
                         [{"limit": decision.limit, "retryAfter": decision.retry_after}]))
        return True

    def _release(self, owner: str, message: TutorTurnMessage) -> None:
        if self.claims is not None:
            with contextlib.suppress(Exception):  # else it expires
                self.claims.release(owner, message.session_id, message.message_id)

    def _parse(self, body: str | None, channel: Channel) -> TutorTurnMessage | None:
        try:
            jsonlimits.check(body or "")
            return _MESSAGE.validate_json(body or "")
        except ParleyError as exc:
            channel.send(error_message(request_id_of(body), exc.code, exc.message, exc.details))
        except ValidationError as exc:
            channel.send(invalid_message(body, exc))
        return None

    def _turn(self, owner: str, message: TutorTurnMessage, sink: Sink, started: float, deadline: float,
              first_claim: bool) -> None:
        def voice() -> tuple[Accent, Gender]:
            session = self.chat.tutor.get_session(owner, message.session_id)
            return session.accent, session.gender

        worker = SpeechWorker(self.speaker, owner, voice, sink, self.clock, started).start()
        text = TextFrames(sink, self.clock)
        splitter = SentenceSplitter(first_clause=True)
        first_token: list[float] = []

        def on_text(delta: str) -> None:
            if not first_token:
                first_token.append(self.clock() - started)
            text.add(delta)
            segments = splitter.feed(delta)
            if segments:
                text.flush()  # the text that completes a sentence goes before its audio
                for segment in segments:
                    worker.say(segment)

        request = ChatRequest(message=message.text, session_id=message.session_id, message_id=message.message_id)
        try:
            claimed = first_claim or self._claim(owner, message, deadline)
        except BaseException:
            worker.stop()
            raise
        try:
            reply = self.chat.turn(owner, request, deadline=deadline, on_text=on_text)
        except BaseException:
            text.pending.clear()  # a failed answer's unsent text is dropped; the error frame follows
            worker.stop()
            raise
        finally:
            if claimed:
                self._release(owner, message)
        if reply.replayed:  # no model call: the saved reply, spoken again (each Polly call metered)
            text.add(reply.reply)
            text.flush()
            for segment in split_sentences(reply.reply):
                worker.say(segment)
        else:
            text.flush()
            for segment in splitter.finish():
                worker.say(segment)
        worker.finish()  # the translation (made in the turn, after the reply) goes after the last audio
        if reply.translation is not None:
            sink.send({"type": "translation", **reply.translation.model_dump(mode="json", exclude_none=True)})
        send_complete(sink, reply)
        self._measure(reply, started, first_token, worker, sink, message)

    def _claim(self, owner: str, message: TutorTurnMessage, deadline: float) -> bool:
        """Claim the turn; while another invocation answers it (a resend from a reconnected client), wait
        for that one to finish, so the resend replays its reply instead of asking the model for another."""
        if self.claims is None:
            return False
        while True:
            if self.clock() >= deadline:
                raise ServiceUnavailable("This turn is still being answered; send it again in a moment (same "
                                         "messageId) for the reply.", headers={"Retry-After": "2"})
            logger.info("Turn answered by another invocation; waiting to replay it")
            self.sleep(CLAIM_POLL_SECONDS)
            if self.claims.claim(owner, message.session_id, message.message_id):
                return True

    def _measure(self, reply: ChatReply, started: float, first_token: list[float], worker: SpeechWorker,
                 sink: Sink, message: TutorTurnMessage) -> None:
        engine = reply.engine or "unknown"
        total = self.clock() - started
        timings = {"TurnDuration": total}
        if first_token:
            timings["TimeToFirstToken"] = first_token[0]
        if worker.first_audio is not None:
            timings["TimeToFirstAudio"] = worker.first_audio
        for name, seconds in timings.items():
            self.emit(name, seconds * 1000, engine)
        logger.info("Streamed turn done", extra={
            "engine": engine, "replayed": reply.replayed, "sentences": worker.sentences,
            "polly_characters": worker.characters, "client_gone": sink.gone, "input_mode": message.input_mode,
            **{f"{k}_ms": round(v * 1000) for k, v in timings.items()}})



def _error(message: str, code: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "details": details or []}}


def voice_turn_from(env: Any, store: Any) -> VoiceTurn:
    """The streamed turn configured from a function's environment (``VoiceTurnEnv``)."""
    from parley.core import clients
    from parley.tutor.chat import chat_from
    from parley.usage.publisher import publisher_from
    from parley.usage.quota import guard_from

    chat = chat_from(env, store)
    quota = TurnQuota(guard_from(env, store))
    chat.quota = quota
    speaker = Speaker(clients.client("polly"), AfterAudioPublisher(publisher_from(env)), quota)
    return VoiceTurn(Connections(store, ttl_seconds=env.ws_connection_ttl_seconds), chat, speaker,
                     limiter=RateLimiter(store, limit=env.ws_messages_per_minute),
                     claims=TurnClaims(store, ttl_seconds=env.turn_seconds + 5))
