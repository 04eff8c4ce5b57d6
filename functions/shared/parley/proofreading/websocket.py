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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from parley.core import jsonlimits
from parley.core.errors import ParleyError
from parley.core.ids import iso_micros, new_ulid, utcnow
from parley.core.observability import logger
from parley.data.ws_requests import RequestRecord, Requests, fingerprint
from parley.proofreading.connections import Connections
from parley.proofreading.engine import Proofreader
from parley.proofreading.frames import (
    Channel,
    ClientMessage,
    ConnectionGone,
    DeltaBuffer,
    FollowingChannel,
    Ping,
    RequestId,
    SendMessage,
    error_message,
    invalid_message,
    send_result,
)
from parley.proofreading.models import ChatResult, Mode, ProofreadResult
from parley.usage.ratelimit import RateLimiter


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
            channel.send(invalid_message(body, exc))
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
                                   [{"limit": decision.limit, "windowSeconds": self.limiter.window_seconds,
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


