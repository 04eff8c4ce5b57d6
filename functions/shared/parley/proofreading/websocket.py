"""The WebSocket side of proofreading: frames, acknowledging a message, and streaming its answer.

API Gateway ends a WebSocket route's integration after 29 s ("Endpoint request timed out" to the
client; "Quotas for configuring and running a WebSocket in API Gateway": integration timeout 50 ms -
29 s, for every integration type). So the route only acknowledges: ``MessageRouter.handle`` checks
the message, records the request (``requests``), answers ``accepted`` and starts the work in a
second, asynchronous invocation of the same function (``dispatch``); ``MessageRouter.work`` then
streams the answer through the ``@connections`` API for as long as the function may run.

A resend of the same ``requestId`` by the same owner never runs twice: a finished request is
replayed (``"replayed": true``, no model call), a running one continues on the new connection (a
``resumed`` frame with the text so far, then the next deltas), an unknown one runs.

API Gateway limits (WebSocket APIs): a frame is at most 32 KB and a message at most 128 KB. Every
message this module posts is one JSON object of at most ``FRAME_BUDGET`` bytes (under 32 KB, so
under both limits): text deltas are coalesced up to a size and time budget and split when larger,
and a final result too large for one message is sent in ``result-part`` messages first (see
docs/websocket.md).

A message is answered for the owner recorded on its connection at $connect (``connections``),
never for anything the message says. A post that finds the connection gone (410 GoneException)
deletes the connection's item; the answer goes on for ``grace_seconds`` in case the client comes
back, then the model's stream is closed and nothing is saved.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from parley.core import jsonlimits
from parley.core.errors import ParleyError
from parley.core.ids import iso_micros, new_ulid, utcnow
from parley.core.models import ApiModel
from parley.core.observability import logger
from parley.data.store import error_code
from parley.proofreading.connections import Connections
from parley.proofreading.engine import Proofreader
from parley.proofreading.models import MAX_PROOFREAD_CHARS, ChatResult, ItemId, Mode, ProofreadResult
from parley.proofreading.requests import RequestRecord, Requests, fingerprint
from parley.usage.ratelimit import RateLimiter

FRAME_LIMIT_BYTES = 32 * 1024
MESSAGE_LIMIT_BYTES = 128 * 1024
FRAME_BUDGET = 31 * 1024  # what we allow ourselves: a margin under the frame limit
DELTA_FLUSH_CHARS = 400  # coalesce deltas up to about this many characters...
DELTA_FLUSH_SECONDS = 0.25  # ...or this long, whichever comes first
FOLLOW_CHECK_SECONDS = 1.0  # how often a running answer looks up where its owner last sent the request
DETACHED_CHECK_SECONDS = 0.5  # ...and how often while its connection is gone


class ConnectionGone(Exception):
    """The client has disconnected (API Gateway answered 410 GoneException)."""


# -- messages from the client --------------------------------------------------------------------
RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class SendMessage(ApiModel):
    action: Literal["sendMessage"]
    request_id: RequestId | None = Field(None, description="Echoed in every message about this request.")
    mode: Mode = "proofread"
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROOFREAD_CHARS)]
    prompt_id: ItemId | None = None
    conversation_id: ItemId | None = None


class Ping(ApiModel):
    action: Literal["ping"]
    request_id: RequestId | None = None


ClientMessage: TypeAdapter[SendMessage | Ping] = TypeAdapter(
    Annotated[SendMessage | Ping, Field(discriminator="action")])


# -- frames --------------------------------------------------------------------------------------
def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _char_cost(ch: str) -> int:
    return len(json.dumps(ch, ensure_ascii=False).encode("utf-8")) - 2


def split_text(text: str, budget: int) -> list[str]:
    """Split ``text`` into pieces whose JSON-string encoding is at most ``budget`` bytes each."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for ch in text:
        cost = _char_cost(ch)
        if size + cost > budget and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += cost
    if current or not pieces:
        pieces.append("".join(current))
    return pieces


class Channel:
    """Posts JSON messages to one connection, each within the frame budget."""

    def __init__(self, management_api: Any, connection_id: str, *, budget: int = FRAME_BUDGET) -> None:
        self.api = management_api
        self.connection_id = connection_id
        self.budget = budget
        self.sent = 0

    def send(self, message: Mapping[str, Any]) -> None:
        data = encode(message)
        if len(data) > self.budget:
            raise ValueError(f"message of {len(data)} bytes exceeds the frame budget of {self.budget}")
        try:
            self.api.post_to_connection(ConnectionId=self.connection_id, Data=data)
        except ClientError as exc:
            if error_code(exc) in ("GoneException", "410"):
                raise ConnectionGone(self.connection_id) from exc
            raise
        self.sent += 1

    def send_text(self, base: Mapping[str, Any], field: str, text: str) -> int:
        """Send ``text`` under ``field`` of ``base``, in as many messages as the budget needs."""
        overhead = len(encode({**base, field: ""})) + 16  # room for a sequence number growing
        count = 0
        for piece in split_text(text, self.budget - overhead):
            self.send({**base, field: piece})
            count += 1
        return count


class DeltaBuffer:
    """Coalesces a model's text deltas into ``delta`` messages (fewer posts, same text), and keeps the
    text sent so far for a client that comes back on another connection (``resume_frames``)."""

    def __init__(self, channel: Channel, request_id: str | None, *, flush_chars: int = DELTA_FLUSH_CHARS,
                 flush_seconds: float = DELTA_FLUSH_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.channel = channel
        self.request_id = request_id
        self.flush_chars = flush_chars
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.pending: list[str] = []
        self.size = 0
        self.seq = 0
        self.sent: list[str] = []  # the delta text since the start (or the last ``retrying``)
        self.last = clock()

    def add(self, text: str) -> None:
        self.pending.append(text)
        self.size += len(text)
        if self.size >= self.flush_chars or self.clock() - self.last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        text, self.pending, self.size = "".join(self.pending), [], 0
        for piece in split_text(text, self.channel.budget - 200):
            self.seq += 1
            self.sent.append(piece)  # before the post: a move during it resends this piece in ``resumed``
            self.channel.send({"type": "delta", "requestId": self.request_id, "seq": self.seq, "text": piece})
        self.last = self.clock()

    def restart(self) -> None:
        """After ``retrying`` the client discards the deltas so far; so does a later ``resumed``."""
        self.sent = []

    def resume_frames(self) -> tuple[list[dict[str, Any]], int]:
        """What a client on a new connection needs first: ``resumed`` with all delta text so far and the
        last seq it covers (further deltas follow from seq + 1). Text too long for one frame continues in
        deltas numbered after it. Returns the frames and the last seq they cover."""
        pieces = split_text("".join(self.sent), self.channel.budget - 300)
        base = self.seq
        frames: list[dict[str, Any]] = [{"type": "resumed", "requestId": self.request_id, "seq": base,
                                         "text": pieces[0]}]
        for offset, piece in enumerate(pieces[1:], start=1):
            frames.append({"type": "delta", "requestId": self.request_id, "seq": base + offset, "text": piece})
        self.seq = base + len(pieces) - 1
        return frames, self.seq


def error_message(request_id: str | None, code: str, message: str,
                  details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "error", "requestId": request_id,
            "error": {"code": code, "message": message, "details": details or []}}


def send_result(channel: Channel, request_id: str | None, mode: Mode, result: ProofreadResult | ChatResult,
                *, replayed: bool = False) -> None:
    """The final message: the whole result in one message, or (when too large) in parts first."""
    payload = result.model_dump(mode="json", by_alias=True)
    extra = {"replayed": True} if replayed else {}
    whole = {"type": "complete", "requestId": request_id, "mode": mode, "result": payload, "resultParts": 0, **extra}
    if len(encode(whole)) <= channel.budget:
        channel.send(whole)
        return
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    base = {"type": "result-part", "requestId": request_id, "index": 0, "count": 0, "data": ""}
    pieces = split_text(data, channel.budget - len(encode(base)) - 24)
    for index, piece in enumerate(pieces):
        channel.send({**base, "index": index, "count": len(pieces), "data": piece})
    summary = {k: payload[k] for k in ("conversationId", "turn", "engine", "model", "usage")}
    channel.send({"type": "complete", "requestId": request_id, "mode": mode, "result": None,
                  "resultParts": len(pieces), "summary": summary, **extra})


class FollowingChannel(Channel):
    """The channel of one running request: posts where the request's owner last sent it.

    Every ``check_every`` seconds (and whenever a post finds its connection gone) it looks up the
    request's connection; when the owner has resent the request on another connection, the answer
    moves there, starting with the ``resumed`` frames (``resumed()``). While no connection is there it
    keeps the answer going (the text stays in the delta buffer) for ``grace_seconds``; after that a
    post raises ``ConnectionGone`` - unless ``final`` is set, once the outcome is recorded (a resend
    then replays it), when a frame with no client to take it is simply dropped.
    """

    def __init__(self, management_api: Any, connection_id: str, *, locate: Callable[[], str | None],
                 forget: Callable[[str], None], resumed: Callable[[], tuple[list[dict[str, Any]], int]],
                 grace_seconds: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, check_every: float | None = None,
                 budget: int = FRAME_BUDGET) -> None:
        super().__init__(management_api, connection_id, budget=budget)
        self.locate = locate
        self.forget = forget
        self.resumed = resumed
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.sleep = sleep
        self.check_every = FOLLOW_CHECK_SECONDS if check_every is None else check_every
        self.checked = clock()
        self.detached_since: float | None = None
        self.covered_seq = 0
        self.final = False
        self.moves = 0

    def send(self, message: Mapping[str, Any]) -> None:
        if self.detached_since is not None:
            self._look(DETACHED_CHECK_SECONDS)
            if self.detached_since is not None:
                if not self.final and self.clock() - self.detached_since >= self.grace_seconds:
                    raise ConnectionGone(self.connection_id)
                return  # no one to take it now: the resumed frame (or a replay) carries it later
        elif self.clock() - self.checked >= self.check_every:
            self._look(0.0)
        if message.get("type") == "delta" and int(message.get("seq", 0)) <= self.covered_seq:
            return  # already in the resumed frame
        try:
            super().send(message)
        except ConnectionGone:
            logger.info("Connection gone; the answer goes on while the client may come back",
                        extra={"connection_id": self.connection_id, "grace_seconds": self.grace_seconds})
            self.forget(self.connection_id)
            self.detached_since = self.clock()
            self._look(0.0)
            if self.detached_since is None:  # the client is already back on another connection
                self.send(message)

    def _look(self, min_interval: float) -> None:
        now = self.clock()
        if now - self.checked < min_interval:
            return
        self.checked = now
        if self.detached_since is not None:
            self.sleep(0)  # let a waiting invocation run (the local stack runs functions in turns)
        where = self.locate()
        if where and where != self.connection_id:
            self.move_to(where)

    def move_to(self, connection_id: str) -> None:
        """Answer on ``connection_id`` from now on, starting with the text so far."""
        logger.info("Request resumed on another connection", extra={"connection_id": connection_id})
        self.connection_id = connection_id
        self.detached_since = None
        self.moves += 1
        frames, self.covered_seq = self.resumed()
        for frame in frames:
            self.send(frame)


class Job(BaseModel):
    """The work of one acknowledged ``sendMessage``: the event of the asynchronous invocation."""

    model_config = ConfigDict(extra="forbid")

    owner: str
    request_id: RequestId
    attempt: str
    connection_id: str
    callback_url: str
    mode: Mode
    text: str
    prompt_id: str | None = None
    conversation_id: str | None = None


Dispatch = Callable[[Job], None]


def _outcome_of(mode: Mode, result: ProofreadResult | ChatResult) -> dict[str, Any]:
    """What a replay needs besides the saved exchange."""
    outcome: dict[str, Any] = {"mode": mode, "conversationId": result.conversation_id, "turn": result.turn,
                               "promptId": result.prompt_id, "skippedFiles": result.skipped_files}
    if isinstance(result, ProofreadResult):
        outcome.update(repaired=result.repaired, dropped=result.dropped)
    return outcome


# -- the message route (acknowledges) and the work (answers) -----------------------------------------
@dataclass
class MessageRouter:
    """One client message: ``handle`` on the route (ping, or acknowledge and dispatch), ``work`` in the
    asynchronous invocation that streams the answer."""

    connections: Connections
    proofreader: Proofreader
    requests: Requests
    dispatch: Dispatch | None = None
    callback_url: str = ""
    grace_seconds: float = 20.0
    clock: Callable[[], float] = time.monotonic
    limiter: RateLimiter | None = None  # each owner's share of the stage (parley.usage.ratelimit)
    sleep: Callable[[float], None] = time.sleep

    # -- the route: answers within API Gateway's 29 s, whatever the model takes
    def handle(self, connection_id: str, body: str | None, channel: Channel) -> None:
        try:
            self._handle(connection_id, body, channel)
        except ConnectionGone:
            logger.info("Connection gone; cleaned up", extra={"connection_id": connection_id})
            self.connections.close(connection_id)

    def _handle(self, connection_id: str, body: str | None, channel: Channel) -> None:
        owner = self.connections.owner_of(connection_id)
        if owner is None:
            channel.send(error_message(None, "UNAUTHORIZED", "This connection is not registered (expired or "
                                                              "never authorised); reconnect."))
            return
        try:
            jsonlimits.check(body or "")  # deeper or longer than the parsers take: an error message, not a crash
            message = ClientMessage.validate_json(body or "")
        except ParleyError as exc:
            channel.send(error_message(None, exc.code, exc.message, exc.details))
            return
        except ValidationError as exc:
            request_id = _request_id_of(body)
            if any(e.get("type") == "json_invalid" for e in exc.errors()):
                channel.send(error_message(request_id, "MALFORMED_JSON", "The message is not valid JSON."))
            else:
                details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
                            "type": e.get("type", "")} for e in exc.errors()]
                channel.send(error_message(request_id, "VALIDATION_ERROR", "The message is not valid; see details.",
                                           details))
            return
        if isinstance(message, Ping):
            channel.send({"type": "pong", "requestId": message.request_id, "at": iso_micros(utcnow())})
            return
        # Each owner's share of the stage: a message that starts an answer is counted (one write); a
        # ping or a refused message is not (it writes nothing, and API Gateway's stage throttle bounds it).
        if self.limiter is not None and not self._within_limit(owner, connection_id, message.request_id, channel):
            return
        rid = message.request_id or f"r-{new_ulid()}"
        try:
            self._accept(owner, rid, message, connection_id, channel)
        except ParleyError as exc:
            channel.send(error_message(rid, exc.code, exc.message, exc.details))
        except ConnectionGone:
            raise
        except Exception:
            logger.exception("WebSocket message could not be accepted")
            channel.send(error_message(rid, "INTERNAL_ERROR", "Something went wrong on our side; nothing was saved."))

    def _within_limit(self, owner: str, connection_id: str, request_id: str | None, channel: Channel) -> bool:
        assert self.limiter is not None
        decision = self.limiter.hit(owner, "ws")
        if decision.allowed:
            return True
        channel.send(error_message(request_id, "THROTTLED", f"More than {decision.limit} messages a minute; this one "
                                   f"was not acted on. Retry in {decision.retry_after} s.",
                                   [{"limit": decision.limit, "windowSeconds": self.limiter.window,
                                     "retryAfter": decision.retry_after}]))
        if decision.close:  # a flood: stop it spending the stage's shared rate
            logger.warning("Connection closed for flooding", extra={"connection_id": connection_id,
                                                                   "messages": decision.count})
            self.connections.close(connection_id)
            with contextlib.suppress(ClientError):  # gone already
                channel.api.delete_connection(ConnectionId=connection_id)
        return False

    def _accept(self, owner: str, rid: str, message: SendMessage, connection_id: str, channel: Channel) -> None:
        self.proofreader.check_length(message.text)
        asked = {"mode": message.mode, "text": message.text, "promptId": message.prompt_id,
                 "conversationId": message.conversation_id}
        kind, record = self.requests.claim(owner, rid, connection_id, fingerprint(asked))
        if kind == "conflict":
            channel.send(error_message(rid, "CONFLICT", f"requestId {rid!r} was already used for another message; "
                                                        "send this one with a new requestId."))
        elif kind == "finished":
            self._replay(record, channel)
        elif kind == "moved":
            logger.info("Request resent on another connection; its answer follows", extra={"request_id": rid})
        else:
            channel.send({"type": "accepted", "requestId": rid, "mode": message.mode})
            job = Job(owner=owner, request_id=rid, attempt=record.attempt, connection_id=connection_id,
                      callback_url=self.callback_url, mode=message.mode, text=message.text,
                      prompt_id=message.prompt_id, conversation_id=message.conversation_id)
            try:
                if self.dispatch is None:
                    raise RuntimeError("no dispatcher for the work")
                self.dispatch(job)
            except Exception:
                logger.exception("The answer's invocation could not be started")
                self.requests.forget(record)  # a resend runs it normally
                channel.send(error_message(rid, "SERVICE_UNAVAILABLE", "The answer could not be started; nothing "
                                                                       "was saved. Send the message again."))

    def _replay(self, record: RequestRecord, channel: Channel) -> None:
        rid, outcome = record.request_id, record.outcome or {}
        if record.status == "failed":
            channel.send({"type": "error", "requestId": rid, "error": outcome.get("error"), "replayed": True})
            return
        exchange = self.proofreader.conversations.exchange(record.owner, outcome["conversationId"], outcome["turn"])
        if exchange is None:
            channel.send({**error_message(rid, "NOT_FOUND", "This request was answered, but its conversation has "
                                                            "since been deleted. Send the text again with a new "
                                                            "requestId."), "replayed": True})
            return
        common = {"conversation_id": outcome["conversationId"], "turn": outcome["turn"],
                  "prompt_id": outcome.get("promptId"), "skipped_files": outcome.get("skippedFiles", []),
                  "engine": exchange.engine, "model": exchange.model, "usage": exchange.usage}
        result: ProofreadResult | ChatResult
        if outcome["mode"] == "proofread":
            result = ProofreadResult(corrections=exchange.corrections or [], corrected_text=exchange.output,
                                     repaired=outcome.get("repaired", 0), dropped=outcome.get("dropped", 0), **common)
        else:
            result = ChatResult(text=exchange.output, **common)
        send_result(channel, rid, outcome["mode"], result, replayed=True)

    # -- the work: the asynchronous invocation, up to the function's timeout
    def work(self, job: Job, management_api: Any, remaining: Callable[[], float] | None = None) -> None:
        record = self.requests.start(job.owner, job.request_id, job.attempt,
                                     run_seconds=remaining() if remaining else 300)
        if record is None:
            logger.info("Request not started: another invocation has it, or it expired", extra={
                "request_id": job.request_id})
            return
        rid = job.request_id
        buffer = DeltaBuffer(Channel(management_api, record.connection_id), rid, clock=self.clock)
        channel = FollowingChannel(
            management_api, record.connection_id, resumed=buffer.resume_frames, forget=self.connections.close,
            locate=lambda: self.requests.connection_of(job.owner, rid, job.attempt),
            grace_seconds=self.grace_seconds, clock=self.clock, sleep=self.sleep)
        buffer.channel = channel
        if record.connection_id != job.connection_id:  # resent elsewhere while it waited to start
            channel.move_to(record.connection_id)
        try:
            prepared = self.proofreader.prepare(job.owner, mode=job.mode, text=job.text, prompt_id=job.prompt_id,
                                                conversation_id=job.conversation_id)

            def retrying(problem: str) -> None:
                buffer.flush()
                buffer.restart()
                channel.send({"type": "retrying", "requestId": rid, "reason": problem})

            result = self.proofreader.run(prepared, on_delta=buffer.add, on_retry=retrying, remaining=remaining)
        except ParleyError as exc:
            buffer.pending.clear()  # a failed answer's unsent text is dropped, not delivered late
            self._fail(job, channel, error_message(rid, exc.code, exc.message, exc.details))
            return
        except ConnectionGone:
            logger.info("Client gone and not back in time; model stream closed, nothing saved",
                        extra={"request_id": rid, "grace_seconds": self.grace_seconds})
            self._fail(job, None, error_message(
                rid, "CONNECTION_CLOSED", f"The connection closed while the answer was being written and no client "
                                          f"came back within {self.grace_seconds:g} s; nothing was saved. Send the "
                                          "text again with a new requestId."))
            return
        except Exception:
            logger.exception("WebSocket answer failed")
            self._fail(job, channel, error_message(rid, "INTERNAL_ERROR",
                                                   "Something went wrong on our side; nothing was saved."))
            return
        channel.final = True  # saved: from here on a resend replays it, so nothing is lost with the client
        buffer.flush()
        done = self.requests.finish(job.owner, rid, job.attempt, "complete", _outcome_of(job.mode, result))
        if done is not None and done.connection_id != channel.connection_id:
            channel.move_to(done.connection_id)
        send_result(channel, rid, job.mode, result)

    def _fail(self, job: Job, channel: FollowingChannel | None, frame: dict[str, Any]) -> None:
        """Record the error (a resend replays it), then tell the client, if one is there."""
        self.requests.finish(job.owner, job.request_id, job.attempt, "failed", {"error": frame["error"]})
        if channel is not None:
            channel.final = True
            channel.send(frame)


def _request_id_of(body: str | None) -> str | None:
    try:
        value = json.loads(body or "").get("requestId")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and len(value) <= 64 else None
