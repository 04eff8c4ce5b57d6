"""The WebSocket requests aggregate, by (owner, requestId): each runs once, whatever the client resends.

The message route acknowledges a ``sendMessage`` at once and the work runs in a second invocation
(API Gateway ends a WebSocket route's integration after 29 s). A client that lost its connection
reconnects and resends the same ``requestId``; the record decides what that resend gets:

    request   PK=<owner>  SK=WSREQ#<requestId>
              status       queued (acknowledged) -> running (the worker started) -> complete | failed
              attempt      the worker that owns the run (a stale or duplicate worker changes nothing)
              connectionId where the answer goes: the connection the owner last sent the request on
              fingerprint  of the message, so a reused requestId with another text is refused
              leaseUntil   until when the run may still be going (after it, a resend runs it again)
              outcome      complete: where the saved exchange is (replayed from the conversation);
                           failed: the error message that was sent
              expiresAt    TTL, a day after the request

The owner comes from the connection's record (the $connect authorizer), never from a message, and
is part of the key: one owner's requestId never reaches another owner's request.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from parley.data import keys
from parley.data.store import Store, error_code, raise_if_throttled

RECORD_TTL_SECONDS = 24 * 3600
START_WITHIN_SECONDS = 60  # the worker's MaximumEventAgeInSeconds: a queued request older than this never runs
RUN_MARGIN_SECONDS = 30  # a running request's lease: the worker's timeout plus this

Status = Literal["queued", "running", "complete", "failed"]
ClaimKind = Literal["new", "moved", "finished", "conflict"]


def fingerprint(message: Mapping[str, Any]) -> str:
    """A digest of what was asked (mode, text, prompt, conversation), not of how it was framed."""
    canonical = json.dumps(dict(message), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class RequestRecord:
    owner: str
    request_id: str
    status: Status
    attempt: str
    connection_id: str
    fingerprint: str
    lease_until: int
    outcome: dict[str, Any] | None = None

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> RequestRecord:
        return cls(owner=str(item["PK"]), request_id=str(item["requestId"]), status=item["status"],
                   attempt=str(item["attempt"]), connection_id=str(item["connectionId"]),
                   fingerprint=str(item["fingerprint"]), lease_until=int(item["leaseUntil"]),
                   outcome=json.loads(item["outcome"]) if item.get("outcome") else None)

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "failed")


def _conditional_failed(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class Requests:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def get(self, owner: str, request_id: str) -> RequestRecord | None:
        item = self.store.get(owner, keys.ws_request_sk(request_id))
        return RequestRecord.of(item) if item else None

    def _changed_if(self, owner: str, request_id: str, change: str, condition: str,
                    values: dict[str, Any]) -> RequestRecord | None:
        """The record after ``change`` (SET ...; ``#s`` is its status), or None when ``condition``
        did not hold: the run is no longer in the state (or the attempt) the caller knew."""
        item = self.store.updated_if(Key={"PK": owner, "SK": keys.ws_request_sk(request_id)}, UpdateExpression=change,
                                     ConditionExpression=condition, ExpressionAttributeNames={"#s": "status"},
                                     ExpressionAttributeValues=values)
        return RequestRecord.of(item) if item else None

    def claim(self, owner: str, request_id: str, connection_id: str,
              digest: str) -> tuple[ClaimKind, RequestRecord]:
        """Record a request sent on ``connection_id``, or find what became of an earlier send.

        new       no live run: this send starts one (queued; the caller dispatches the worker)
        moved     a run is queued or going: it continues on this connection
        finished  it completed or failed: the caller replays the outcome
        conflict  the requestId was used for another message
        """
        for _ in range(4):  # each pass either decides or lost a race that changed the record
            now = int(self.clock())
            attempt = uuid.uuid4().hex
            item = {"PK": owner, "SK": keys.ws_request_sk(request_id), "type": "WS_REQUEST", "requestId": request_id,
                    "status": "queued", "attempt": attempt, "connectionId": connection_id, "fingerprint": digest,
                    "acceptedAt": now, "leaseUntil": now + START_WITHIN_SECONDS,
                    "expiresAt": now + RECORD_TTL_SECONDS}
            try:  # a new request, or one whose run can no longer be going (its lease ran out)
                self.store.put(item, ConditionExpression="attribute_not_exists(SK) OR "
                               "(#s IN (:queued, :running) AND leaseUntil < :now AND fingerprint = :f)",
                               ExpressionAttributeNames={"#s": "status"},
                               ExpressionAttributeValues={":queued": "queued", ":running": "running", ":now": now,
                                                          ":f": digest})
                return "new", RequestRecord.of(item)
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
            existing = self.get(owner, request_id)
            if existing is None:
                continue  # deleted meanwhile (a dispatch that failed): try again
            if existing.fingerprint != digest:
                return "conflict", existing
            if existing.finished:
                return "finished", existing
            moved = self._changed_if(  # queued or running, lease alive: follow the owner to this connection
                owner, request_id, "SET connectionId = :c, movedAt = :now",
                "attempt = :a AND #s IN (:queued, :running) AND leaseUntil >= :now",
                {":c": connection_id, ":now": now, ":a": existing.attempt, ":queued": "queued", ":running": "running"})
            if moved:
                return "moved", moved
        raise RuntimeError(f"request {request_id!r} kept changing while it was claimed")

    def forget(self, record: RequestRecord) -> None:
        """Undo a claim whose worker could not be started, so that a resend runs normally."""
        try:
            self.store.table.delete_item(
                Key={"PK": record.owner, "SK": keys.ws_request_sk(record.request_id)},
                ConditionExpression="attempt = :a AND #s = :queued", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":a": record.attempt, ":queued": "queued"})
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise_if_throttled(exc, "DeleteItem")
                raise

    def start(self, owner: str, request_id: str, attempt: str, *, run_seconds: float) -> RequestRecord | None:
        """The worker takes the run (queued -> running); None when it is not (or no longer) its to take."""
        now = int(self.clock())
        return self._changed_if(
            owner, request_id, "SET #s = :running, startedAt = :now, leaseUntil = :lease",
            "attempt = :a AND #s = :queued AND leaseUntil >= :now",
            {":running": "running", ":queued": "queued", ":now": now, ":a": attempt,
             ":lease": now + int(run_seconds) + RUN_MARGIN_SECONDS})

    def connection_of(self, owner: str, request_id: str, attempt: str) -> str | None:
        """Where this run's answer goes now (None when the run is no longer this worker's)."""
        record = self.get(owner, request_id)
        if record is None or record.attempt != attempt:
            return None
        return record.connection_id

    def finish(self, owner: str, request_id: str, attempt: str, status: Literal["complete", "failed"],
               outcome: Mapping[str, Any]) -> RequestRecord | None:
        """Record the outcome (before it is sent: a resend from here on replays it)."""
        now = int(self.clock())
        return self._changed_if(
            owner, request_id, "SET #s = :status, outcome = :outcome, finishedAt = :now",
            "attempt = :a AND #s = :running",
            {":status": status, ":now": now, ":a": attempt, ":running": "running",
             ":outcome": json.dumps(dict(outcome), ensure_ascii=False)})
