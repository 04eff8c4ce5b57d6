"""The proofreading WebSocket's frames: the client's messages, and what is posted back through the
``@connections`` API - each one JSON object of at most ``FRAME_BUDGET`` bytes (API Gateway's limits: a
frame is at most 32 KB, a message at most 128 KB): deltas coalesced and split, a large result sent in
``result-part`` messages first, and a channel that follows its request to the owner's newest connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Annotated, Any, Literal

from botocore.exceptions import ClientError
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from parley.core.models import ApiModel
from parley.core.observability import logger
from parley.data.store import error_code
from parley.proofreading.models import MAX_PROOFREAD_CHARS, ChatResult, ItemId, Mode, ProofreadResult

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


@dataclass
class DeltaBuffer:
    """Coalesces a model's text deltas into ``delta`` messages (fewer posts, same text), and keeps the
    text sent so far for a client that comes back on another connection (``resume_frames``)."""

    channel: Channel
    request_id: str | None
    _: KW_ONLY
    flush_chars: int = DELTA_FLUSH_CHARS
    flush_seconds: float = DELTA_FLUSH_SECONDS
    clock: Callable[[], float] = time.monotonic
    pending: list[str] = field(default_factory=list, init=False)
    size: int = field(default=0, init=False)
    seq: int = field(default=0, init=False)
    sent: list[str] = field(default_factory=list, init=False)  # the delta text since the start or ``retrying``
    last: float = field(init=False)

    def __post_init__(self) -> None:
        self.last = self.clock()

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


def request_id_of(body: str | None) -> str | None:
    """The ``requestId`` of a message that failed validation, when it has a usable one."""
    try:
        value = json.loads(body or "").get("requestId")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and len(value) <= 64 else None


def invalid_message(body: str | None, exc: ValidationError) -> dict[str, Any]:
    """The error message answering a client message its route's model refused: not JSON at all, or
    JSON with the fields listed in ``details``."""
    request_id = request_id_of(body)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return error_message(request_id, "MALFORMED_JSON", "The message is not valid JSON.")
    details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
                "type": e.get("type", "")} for e in exc.errors()]
    return error_message(request_id, "VALIDATION_ERROR", "The message is not valid; see details.", details)


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
