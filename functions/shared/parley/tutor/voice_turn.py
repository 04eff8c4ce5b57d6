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
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from parley.core import jsonlimits
from parley.core.errors import ParleyError, ServiceUnavailable
from parley.core.models import ApiModel, ClientId
from parley.core.observability import logger
from parley.data.turns import TurnClaims
from parley.proofreading.connections import Connections
from parley.proofreading.frames import FRAME_BUDGET, Channel, ConnectionGone, encode, error_message, split_text
from parley.speech.voices import Speaker, Speech
from parley.tutor.chat import Chat, ChatReply, ChatRequest, SessionId
from parley.tutor.models import Accent, Gender, MessageText
from parley.tutor.sentences import Segment, SentenceSplitter, split_sentences
from parley.usage.events import UsageEvent
from parley.usage.publisher import PublishOutcome, UsagePublisher
from parley.usage.quota import Limits, QuotaGuard
from parley.usage.ratelimit import RateLimiter

TEXT_FLUSH_SECONDS = 0.15  # a text frame at least this often while a sentence is being written...
TEXT_FLUSH_CHARS = 200  # ...or once this much text is waiting
CLAIM_POLL_SECONDS = 0.25  # how often a resend looks whether the turn's first invocation has finished
RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Emit = Callable[[str, float, str], None]  # (metric name, milliseconds, engine)


class TutorTurnMessage(ApiModel):
    """The client's one message of a streamed turn."""

    action: Literal["tutorTurn"]
    request_id: RequestId | None = Field(None, description="Echoed in every frame about this turn.")
    session_id: SessionId
    message_id: ClientId = Field(description="The learner message's client id: the turn's idempotency key.")
    text: MessageText = Field(description="The learner's final transcript, or typed text.")
    input_mode: Literal["voice", "text"] | None = Field(None, description="Recorded for metrics only.")


_MESSAGE: TypeAdapter[TutorTurnMessage] = TypeAdapter(TutorTurnMessage)


def emit_timing(name: str, milliseconds: float, engine: str) -> None:
    """One timing (CloudWatch EMF through Powertools) with dimension Engine, flushed at once."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from parley.core.observability import metrics

    try:
        with single_metric(name=name, unit=MetricUnit.Milliseconds, value=round(milliseconds, 1),
                           namespace=metrics.namespace) as metric:
            metric.add_dimension(name="Engine", value=engine or "unknown")
    except Exception:  # a metric must never fail a turn
        logger.warning("Could not emit metric", extra={"metric": name})


# -- the connection, as this turn uses it ------------------------------------------------------------
class Sink:
    """Posts one turn's frames (from the turn's thread and the speech worker, one at a time). A post
    that finds the connection gone marks the sink gone: nothing more is sent, the turn goes on."""

    def __init__(self, channel: Channel, request_id: str | None, on_gone: Callable[[], None]) -> None:
        self.channel = channel
        self.request_id = request_id
        self.on_gone = on_gone
        self.gone = False
        self.sent: list[str] = []  # the types of the frames posted, in order (logs and tests)
        self._lock = threading.Lock()

    def send(self, frame: Mapping[str, Any]) -> bool:
        with self._lock:
            if self.gone:
                return False
            try:
                self.channel.send({**frame, "requestId": self.request_id})
            except ConnectionGone:
                self.gone = True
                logger.info("Client gone mid-turn: no more frames; the reply is still saved")
                with contextlib.suppress(Exception):
                    self.on_gone()
                return False
            self.sent.append(str(frame.get("type")))
            return True


class TextFrames:
    """The reply's text as it is generated, coalesced into ``text`` frames (fewer posts, same text)."""

    def __init__(self, sink: Sink, clock: Callable[[], float]) -> None:
        self.sink = sink
        self.clock = clock
        self.pending: list[str] = []
        self.size = 0
        self.seq = 0
        self.last = clock()

    def add(self, delta: str) -> None:
        self.pending.append(delta)
        self.size += len(delta)
        if self.size >= TEXT_FLUSH_CHARS or self.clock() - self.last >= TEXT_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        text, self.pending, self.size = "".join(self.pending), [], 0
        for piece in split_text(text, FRAME_BUDGET - 200):
            self.seq += 1
            self.sink.send({"type": "text", "seq": self.seq, "text": piece})
        self.last = self.clock()


def audio_frames(index: int, segment: Segment, speech: Speech, budget: int = FRAME_BUDGET) -> list[dict[str, Any]]:
    """One sentence's speech as ``audio`` frames, each under ``budget`` bytes once encoded (with the
    ``requestId`` the sink adds): the base64 of the MP3 split into ``parts``."""
    base: dict[str, Any] = {"type": "audio", "requestId": "x" * 64, "sentence": index, "part": 9999, "parts": 9999,
                            "text": segment.text, "contentType": speech.content_type, "voice": speech.voice.voice_id,
                            "engine": speech.voice.engine, "data": ""}
    if segment.clause:
        base["clause"] = True
    room = budget - len(encode(base)) - 8
    if room < 1024:
        raise ValueError("a sentence too long to send with its audio")
    data = speech.audio_base64
    pieces = [data[i:i + room] for i in range(0, len(data), room)] or [""]
    del base["requestId"]
    return [{**base, "part": n, "parts": len(pieces), "data": piece} for n, piece in enumerate(pieces)]


# -- metering, without a request more than needed on the way to the first audio ------------------------
class TurnQuota(QuotaGuard):
    """The quota guard of one turn: the owner's limits are read once for the turn (the early check, the
    model's reservation and each sentence's reservation all use them); every reservation is still its
    own conditional write, so the guarantees are the guard's."""

    def __init__(self, guard: QuotaGuard) -> None:
        super().__init__(guard.store, guard.defaults)
        self._limits: dict[str, Limits] = {}

    def limits_for(self, owner: str) -> Limits:
        if owner not in self._limits:
            self._limits[owner] = super().limits_for(owner)
        return self._limits[owner]


class AfterAudioPublisher(UsagePublisher):
    """The speech worker's publisher: a sentence's usage event is put on the bus right after its audio
    frames are posted (``flush``), not before - the learner hears it a PutEvents sooner. The event is
    the same one, settling the same reservation; ``flush`` runs whatever happens to the frames."""

    def __init__(self, publisher: UsagePublisher) -> None:
        self.inner = publisher
        self.prices = publisher.prices
        self.held: list[UsageEvent] = []

    def publish(self, event: UsageEvent) -> PublishOutcome:
        self.held.append(event)
        return PublishOutcome.PUBLISHED

    def flush(self) -> None:
        held, self.held = self.held, []
        for event in held:
            self.inner.publish(event)


# -- speech, in a worker thread ----------------------------------------------------------------------
@dataclass
class SpeechWorker:
    """Synthesises the queued sentences in order and posts their audio, while the model writes on. The
    voice (the session's accent and gender) is looked up in the worker's own thread as the turn starts."""

    speaker: Speaker
    owner: str
    voice_of: Callable[[], tuple[Accent, Gender]]
    sink: Sink
    clock: Callable[[], float]
    started: float
    first_audio: float | None = None
    sentences: int = 0
    characters: int = 0
    failed: dict[str, Any] | None = None
    _queue: queue.Queue[tuple[int, Segment] | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None

    def start(self) -> SpeechWorker:
        self._thread = threading.Thread(target=self._run, name="parley-voice-turn-speech", daemon=True)
        self._thread.start()
        return self

    def say(self, segment: Segment) -> None:
        self._queue.put((self.sentences, segment))
        self.sentences += 1

    def finish(self) -> None:
        """Wait until every queued sentence is spoken (or skipped)."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        """Speak nothing more (the turn failed): drop what is queued, then wait for the worker."""
        self.failed = self.failed or {"code": "CANCELLED"}
        self.finish()

    def _run(self) -> None:
        try:
            accent, gender = self.voice_of()
        except Exception:  # the turn itself fails the same way (a missing session): nothing to speak
            accent, gender = "US", "female"
            self.failed = {"code": "NOT_FOUND", "message": "No session to speak for.", "details": []}
        while (item := self._queue.get()) is not None:
            index, segment = item
            if self.sink.gone or self.failed is not None:
                continue  # no one to hear it, or speech already failed: no Polly call, nothing billed
            try:
                self._speak(index, segment, accent, gender)
            finally:
                publisher = self.speaker.publisher
                if isinstance(publisher, AfterAudioPublisher):
                    publisher.flush()

    def _speak(self, index: int, segment: Segment, accent: Accent, gender: Gender) -> None:
        try:
            speech = self.speaker.speak(self.owner, segment.text, accent, gender)
        except ParleyError as exc:  # over quota, Polly unavailable: the text goes on, speech stops
            self.failed = {"code": exc.code, "message": exc.message, "details": exc.details}
        except Exception:
            logger.exception("Speech failed mid-turn")
            self.failed = {"code": "INTERNAL_ERROR", "message": "Speech failed; the text goes on.", "details": []}
        if self.failed is not None:
            self.sink.send({"type": "speech-error", "sentence": index, "error": self.failed})
            return
        self.characters += speech.characters
        for frame in audio_frames(index, segment, speech):
            if not self.sink.send(frame):
                break
            if self.first_audio is None:
                self.first_audio = self.clock() - self.started


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
            channel.send(error_message(_request_id_of(body), exc.code, exc.message, exc.details))
        except ValidationError as exc:
            rid = _request_id_of(body)
            if any(e.get("type") == "json_invalid" for e in exc.errors()):
                channel.send(error_message(rid, "MALFORMED_JSON", "The message is not valid JSON."))
            else:
                details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
                            "type": e.get("type", "")} for e in exc.errors()]
                channel.send(error_message(rid, "VALIDATION_ERROR", "The message is not valid; see details.", details))
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
        _send_complete(sink, reply)
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


def _send_complete(sink: Sink, reply: ChatReply) -> None:
    """The saved turn, in one frame; one too large for a frame goes first in ``turn-part`` frames."""
    turn = reply.model_dump(mode="json", by_alias=True)
    whole = {"type": "complete", "turn": turn, "replayed": reply.replayed}
    if len(encode({**whole, "requestId": "x" * 64})) <= FRAME_BUDGET:
        sink.send(whole)
        return
    data = json.dumps(turn, ensure_ascii=False, separators=(",", ":"))
    pieces = split_text(data, FRAME_BUDGET - 300)
    for index, piece in enumerate(pieces):
        sink.send({"type": "turn-part", "index": index, "count": len(pieces), "data": piece})
    sink.send({"type": "complete", "turn": None, "turnParts": len(pieces), "replayed": reply.replayed})


def _error(message: str, code: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "details": details or []}}


def _request_id_of(body: str | None) -> str | None:
    try:
        value = json.loads(body or "").get("requestId")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and len(value) <= 64 else None


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
