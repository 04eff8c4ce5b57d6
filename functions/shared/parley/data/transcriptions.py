"""The transcriptions aggregate: a transcription record, the transcript saved under its session,
and the task token its workflow waits with.

    transcription  PK=<owner>  SK=TRANSCRIPTION#<transcriptionId>    (status, text, words, reason)
    transcript     PK=<owner>  SK=SESSION#<sessionId>#TRANSCRIPT#<transcriptionId>  (when a session was given)
    task token     PK=TRANSCRIBEJOB#<job name>  SK=TASK_TOKEN        (written by the state machine itself)

Every status change is conditional on the status it leaves, so two writers (a retried task, the
failure path, a late read resolving a stale record) never overwrite each other.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from parley.core.ids import iso_micros
from parley.data import keys
from parley.data.store import Repository, error_code


class TranscriptionRecords(Repository):
    @staticmethod
    def new_item(owner: str, transcription_id: str, *, source: str, fmt: str, key: str, language: str,
                 session_id: str | None, now: datetime, expires: datetime, reservation_id: str | None = None,
                 reserved_cost_usd: float = 0.0) -> dict[str, Any]:
        item: dict[str, Any] = {
            "PK": owner, "SK": keys.transcription_sk(transcription_id), "type": "TRANSCRIPTION",
            "transcriptionId": transcription_id, "status": "queued", "source": source, "format": fmt,
            "audioKey": key, "language": language, "createdAt": iso_micros(now), "updatedAt": iso_micros(now),
            "expiresAt": int(expires.timestamp()),
        }
        if session_id:
            item["sessionId"] = session_id
        if reservation_id is not None:
            item.update({"reservationId": reservation_id, "reservedCostUsd": Decimal(str(reserved_cost_usd))})
        return item

    def get(self, owner: str, transcription_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.transcription_sk(transcription_id))

    def put(self, item: dict[str, Any]) -> None:
        self.store.put(item)

    def delete(self, owner: str, transcription_id: str) -> None:
        self.store.delete(owner, keys.transcription_sk(transcription_id))

    def mark_running(self, item: dict[str, Any], *, execution: str, now: str) -> bool:
        """queued -> running, naming the execution; False if it was not queued any more."""
        return self.store.update_if(
            Key={"PK": item["PK"], "SK": item["SK"]},
            UpdateExpression="SET #st = :running, updatedAt = :now, executionId = :execution",
            ConditionExpression="#st = :queued",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":running": "running", ":queued": "queued", ":now": now,
                                       ":execution": execution})

    def resolve_failed(self, item: dict[str, Any], reason: dict[str, str], *, now: str) -> bool:
        """Failed with ``reason``, if it is still exactly as ``item`` was read; False otherwise."""
        return self.store.update_if(
            Key={"PK": item["PK"], "SK": item["SK"]},
            UpdateExpression="SET #st = :failed, reason = :reason, updatedAt = :now",
            ConditionExpression="#st = :seen AND updatedAt = :seen_at",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":failed": "failed", ":reason": reason, ":now": now,
                                       ":seen": item["status"], ":seen_at": item["updatedAt"]})

    def mark_failed(self, owner: str, transcription_id: str, reason: dict[str, str], *, now: str) -> bool:
        """queued or running -> failed with ``reason``; False if it had ended (or gone) meanwhile."""
        return self.store.update_if(
            Key={"PK": owner, "SK": keys.transcription_sk(transcription_id)},
            UpdateExpression="SET #st = :failed, reason = :reason, updatedAt = :now",
            ConditionExpression="#st IN (:queued, :running)",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":failed": "failed", ":queued": "queued", ":running": "running",
                                       ":reason": reason, ":now": now})

    def save_transcript(self, owner: str, transcription_id: str, *, text: str, words: list[dict[str, Any]],
                        duration: Decimal, billed_seconds: float, language: str, now: str, session_id: str,
                        expires: datetime) -> bool:
        """running -> completed with the transcript, and (with a session) the transcript under the
        session, in ONE transaction; False if the transcription was not running."""
        ops: list[dict[str, Any]] = [{"Update": {
            "Key": {"PK": owner, "SK": keys.transcription_sk(transcription_id)},
            "UpdateExpression": "SET #st = :done, #tx = :text, words = :words, durationSeconds = :dur, "
                                "billedSeconds = :billed, #lang = :lang, updatedAt = :now REMOVE reason",
            "ConditionExpression": "#st = :running",
            "ExpressionAttributeNames": {"#st": "status", "#tx": "text", "#lang": "language"},
            "ExpressionAttributeValues": {":done": "completed", ":running": "running", ":text": text,
                                          ":words": words, ":dur": duration,
                                          ":billed": Decimal(str(billed_seconds)), ":lang": language, ":now": now},
        }}]
        if session_id:
            ops.append({"Put": {"Item": {
                "PK": owner, "SK": keys.session_transcript_sk(session_id, transcription_id), "type": "TRANSCRIPT",
                "transcriptionId": transcription_id, "sessionId": session_id, "text": text, "language": language,
                "durationSeconds": duration, "words": words, "createdAt": now, "expiresAt": int(expires.timestamp()),
            }}})
        try:
            self.store.transact(ops)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True

    def job_wait(self, job_name: str) -> dict[str, Any] | None:
        """The task token item a workflow waits with for this Transcribe job, if any."""
        return self.store.get(keys.transcribe_job_pk(job_name), keys.JOB_WAIT_SK)
