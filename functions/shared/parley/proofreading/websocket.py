"""The WebSocket side of proofreading: connections, frames, and streaming an answer to a client.

API Gateway limits (WebSocket APIs): a frame is at most 32 KB and a message at most 128 KB. Every
message this module posts is one JSON object of at most ``FRAME_BUDGET`` bytes (under 32 KB, so
under both limits): text deltas are coalesced up to a size and time budget and split when larger,
and a final result too large for one message is sent in ``result-part`` messages first (see the
docs/websocket.md).

A message is answered for the owner recorded on its connection at $connect (``connections``),
never for anything the message says. A post that finds the connection gone (410 GoneException)
deletes the connection's item, closes the model's stream and saves nothing.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from botocore.exceptions import ClientError
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from .. import jsonlimits
from ..errors import ParleyError
from ..ids import iso_micros, utcnow
from ..models import ApiModel
from ..observability import logger
from ..ratelimit import RateLimiter
from ..store import error_code
from .connections import Connections
from .engine import Proofreader
from .models import MAX_PROOFREAD_CHARS, ChatResult, ItemId, Mode, ProofreadResult

FRAME_LIMIT_BYTES = 32 * 1024
MESSAGE_LIMIT_BYTES = 128 * 1024
FRAME_BUDGET = 31 * 1024  # what we allow ourselves: a margin under the frame limit
DELTA_FLUSH_CHARS = 400  # coalesce deltas up to about this many characters...
DELTA_FLUSH_SECONDS = 0.25  # ...or this long, whichever comes first


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
    """Coalesces a model's text deltas into ``delta`` messages (fewer posts, same text)."""

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
            self.channel.send({"type": "delta", "requestId": self.request_id, "seq": self.seq, "text": piece})
        self.last = self.clock()


def error_message(request_id: str | None, code: str, message: str,
                  details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "error", "requestId": request_id,
            "error": {"code": code, "message": message, "details": details or []}}


def send_result(channel: Channel, request_id: str | None, mode: Mode, result: ProofreadResult | ChatResult) -> None:
    """The final message: the whole result in one message, or (when too large) in parts first."""
    payload = result.model_dump(mode="json", by_alias=True)
    whole = {"type": "complete", "requestId": request_id, "mode": mode, "result": payload, "resultParts": 0}
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
                  "resultParts": len(pieces), "summary": summary})


# -- the message route ---------------------------------------------------------------------------
@dataclass
class MessageRouter:
    """Handles one client message on a connection: ping, or an answer streamed as it is written."""

    connections: Connections
    proofreader: Proofreader
    clock: Callable[[], float] = time.monotonic
    limiter: RateLimiter | None = None  # each owner's share of the stage (parley.ratelimit)

    def handle(self, connection_id: str, body: str | None, channel: Channel,
               remaining: Callable[[], float] | None = None) -> None:
        try:
            self._handle(connection_id, body, channel, remaining)
        except ConnectionGone:
            logger.info("Connection gone; cleaned up", extra={"connection_id": connection_id})
            self.connections.close(connection_id)

    def _handle(self, connection_id: str, body: str | None, channel: Channel,
                remaining: Callable[[], float] | None) -> None:
        owner = self.connections.owner_of(connection_id)
        if owner is None:
            channel.send(error_message(None, "UNAUTHORIZED", "This connection is not registered (expired or "
                                                              "never authorised); reconnect."))
            return
        if self.limiter is not None and not self._within_limit(owner, connection_id, channel):
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
        self._answer(owner, message, channel, remaining)

    def _within_limit(self, owner: str, connection_id: str, channel: Channel) -> bool:
        assert self.limiter is not None
        decision = self.limiter.hit(owner, "ws")
        if decision.allowed:
            return True
        channel.send(error_message(None, "THROTTLED", f"More than {decision.limit} messages a minute; this one "
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

    def _answer(self, owner: str, message: SendMessage, channel: Channel,
                remaining: Callable[[], float] | None) -> None:
        rid = message.request_id
        buffer = DeltaBuffer(channel, rid, clock=self.clock)
        try:
            prepared = self.proofreader.prepare(owner, mode=message.mode, text=message.text,
                                                prompt_id=message.prompt_id, conversation_id=message.conversation_id)
            channel.send({"type": "accepted", "requestId": rid, "mode": message.mode})

            def retrying(problem: str) -> None:
                buffer.flush()
                channel.send({"type": "retrying", "requestId": rid, "reason": problem})

            result = self.proofreader.run(prepared, on_delta=buffer.add, on_retry=retrying, remaining=remaining)
        except ParleyError as exc:
            buffer.pending.clear()  # a failed answer's unsent text is dropped, not delivered late
            channel.send(error_message(rid, exc.code, exc.message, exc.details))
            return
        except ConnectionGone:
            raise
        except Exception:
            logger.exception("WebSocket message failed")
            channel.send(error_message(rid, "INTERNAL_ERROR", "Something went wrong on our side; nothing was saved."))
            return
        buffer.flush()
        send_result(channel, rid, message.mode, result)


def _request_id_of(body: str | None) -> str | None:
    try:
        value = json.loads(body or "").get("requestId")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and len(value) <= 64 else None
