"""The transcription workflow's Lambda tasks (statemachines/transcription.asl.json): ``prepare``
(normalise the input, check an upload, mark the transcription running), ``collect`` (read and parse
Transcribe's output, save it, meter the job) and ``record_failure`` (a reason a person can act on).
Errors are raised as named exceptions (``errors``) so the ASL Retry/Catch by name.
"""

from __future__ import annotations

import json
from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from parley.core.ids import iso_micros, utcnow
from parley.core.observability import logger, redact_owners
from parley.data.store import Store, error_code
from parley.data.transcriptions import TranscriptionRecords
from parley.speech.transcription.audio import FORMATS, MAX_TRANSCRIPT_ITEM_BYTES, MAX_UPLOAD_BYTES, detect_format
from parley.speech.transcription.cleanup import LateJobs, cleanup_targets
from parley.speech.transcription.errors import (
    FAILURE_MESSAGES,
    INTERNAL_MESSAGE,
    TRANSIENT_S3_CODES,
    TranscriptionAlreadyStarted,
    TranscriptionNotFound,
    TranscriptionNotRunning,
    TranscriptMalformed,
    TranscriptMissing,
    TranscriptTooLarge,
    UploadRejected,
    transient,
)
from parley.speech.transcription.metering import JobMeter, reservation_of
from parley.speech.transcription.objects import job_name, parse_key, transcript_key
from parley.usage.quota import release

TASK_TOKEN_TTL = timedelta(days=1)


def task_input(event: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(the execution's input, the execution's id) from a task's Parameters
    (``{"input.$": "$", "executionId.$": "$$.Execution.Id"}``); a bare input has no id."""
    if isinstance(event.get("input"), dict) and "executionId" in event:
        return event["input"], str(event["executionId"])
    return event, ""


@dataclass
class TranscriptionSteps:
    store: Store
    s3: Any
    transcribe: Any
    _: KW_ONLY
    bucket: str
    stage: str
    retention_days: int = 90
    publisher: Any = None  # where the collect step publishes the job's usage event
    records: TranscriptionRecords = field(init=False)
    meter: JobMeter = field(init=False)
    late_jobs: LateJobs = field(init=False)

    def __post_init__(self) -> None:
        self.records = TranscriptionRecords(self.store)
        self.meter = JobMeter(self.s3, self.publisher)
        self.late_jobs = LateJobs(self.records, self.s3, self.transcribe, self.meter, bucket=self.bucket,
                                  stage=self.stage)

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)

    def _job(self, item: dict[str, Any]) -> dict[str, Any]:
        owner, tid = item["PK"], item["transcriptionId"]
        return {
            "transcriptionId": tid, "owner": owner, "sessionId": item.get("sessionId", ""),
            "language": item["language"], "mediaFormat": FORMATS[item["format"]][0], "bucket": self.bucket,
            "audioKey": item["audioKey"], "mediaUri": f"s3://{self.bucket}/{item['audioKey']}",
            "transcriptKey": transcript_key(owner, tid), "jobName": job_name(self.stage, tid),
            # TTL of the task-token item the state machine stores while it waits for Transcribe's event
            # (a string: the workflow writes it as a DynamoDB N). A day outlives any wait.
            "waitExpiresAt": str(int((utcnow() + TASK_TOKEN_TTL).timestamp())),
            # The quota reservation the API took for this recording: settled by the job's usage event,
            # released by the failure path.
            "reservationId": str(item.get("reservationId", "")),
            "reservedCostUsd": str(item.get("reservedCostUsd", "0")),
        }

    @staticmethod
    def _identify(state: dict[str, Any]) -> tuple[str, str] | None:
        """(owner, transcription id) from a direct start or an S3 "Object Created" event."""
        if state.get("transcriptionId") and state.get("owner"):
            return str(state["owner"]), str(state["transcriptionId"])
        key = ((state.get("detail") or {}).get("object") or {}).get("key", "")
        parsed = parse_key(str(key))
        return (parsed.owner, parsed.transcription_id) if parsed else None

    def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        """Normalise the execution's input, check an upload, mark the transcription running.

        Marking is conditional and names the execution: a retry of this task (its first attempt
        marked the record, then its answer was lost) finds its own mark and goes on; another
        execution for the same transcription is ``TranscriptionAlreadyStarted``."""
        state, execution = task_input(event)
        found = self._identify(state)
        item = self.records.get(*found) if found else None
        if not item:
            raise TranscriptionNotFound(f"No transcription {found[1] if found else '(no id in the input)'}")
        if item["status"] == "running" and execution and item.get("executionId") == execution:
            return self._job(item)
        if item["status"] != "queued":
            self._discard_late_upload(item, state)
            raise TranscriptionAlreadyStarted(f"Transcription {item['transcriptionId']} is {item['status']}")
        if "detail" in state:
            self._check_upload(item, state["detail"])
        if not self.records.mark_running(item, execution=execution or "-", now=iso_micros(utcnow())):
            raise TranscriptionAlreadyStarted(f"Transcription {item['transcriptionId']} started meanwhile")
        return self._job(item)

    def _discard_late_upload(self, item: dict[str, Any], state: dict[str, Any]) -> None:
        """An object uploaded (again) for a transcription that has finished — its upload policy
        reused before it expired — is an orphan nobody will clean up: delete it at once. (While
        the transcription runs, its own cleanup deletes that key when it ends.)"""
        key = str(((state.get("detail") or {}).get("object") or {}).get("key", ""))
        if item["status"] in ("completed", "failed") and key and key == item.get("audioKey") \
                and item.get("source") == "upload":
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            logger.info("Late upload for a finished transcription deleted",
                        extra={"transcription_id": item["transcriptionId"], "status": item["status"]})

    def _check_upload(self, item: dict[str, Any], detail: dict[str, Any]) -> None:
        obj = detail.get("object") or {}
        if item.get("source") != "upload" or obj.get("key") != item.get("audioKey"):
            raise TranscriptionAlreadyStarted("This object is not the upload this transcription waits for")
        size = int(obj.get("size", 0))
        limit = int(item.get("maxBytes", MAX_UPLOAD_BYTES))
        if size == 0:
            raise UploadRejected("The uploaded file is empty.")
        if size > limit:  # S3 enforces the policy's range; this holds for anything that bypassed it
            raise UploadRejected(f"The uploaded file is {size} bytes; at most {limit} are accepted.")
        try:
            head = self.s3.get_object(Bucket=self.bucket, Key=obj["key"], Range="bytes=0-63")["Body"].read()
        except ClientError as exc:
            if error_code(exc) in TRANSIENT_S3_CODES:
                raise transient(exc, "Reading the upload") from exc
            raise
        except (BotoCoreError, OSError) as exc:
            raise transient(exc, "Reading the upload") from exc
        found = detect_format(head)
        if found != item["format"]:
            raise UploadRejected(f"The uploaded file is not {item['format']} audio"
                                 + (f" (it looks like {found})." if found else "."))

    # -- collect: one fact, one write ------------------------------------------------------------
    def collect(self, state: dict[str, Any]) -> dict[str, Any]:
        """Read and parse Transcribe's output; save it on the transcription and under its session
        in ONE transaction (conditional on the transcription still running); meter the job; the
        ``completed`` outcome.

        Idempotent: a retry after the transaction went through (the first attempt timed out
        before answering) finds the transcription completed and answers the same outcome. Every
        job that reaches this step was completed, hence billed, by Transcribe: it is metered on
        every path out of here, also when its transcript is missing or unreadable."""
        job = state["job"]
        owner, tid = job["owner"], job["transcriptionId"]
        try:
            transcript = self.meter.read_transcript(job)
        except (TranscriptMissing, TranscriptMalformed):
            self.meter.meter(job, self.meter.billed_seconds(job, None))
            raise
        seconds = self.meter.billed_seconds(job, transcript)
        words = [{"text": w.text, "start": Decimal(str(w.start)), "end": Decimal(str(w.end)),
                  "confidence": Decimal(str(w.confidence))} for w in transcript.words]
        duration = Decimal(str(transcript.duration_seconds))
        language = transcript.language or job["language"]
        if len(json.dumps({"t": transcript.text, "w": words}, default=str)) > MAX_TRANSCRIPT_ITEM_BYTES:
            self.meter.meter(job, seconds)
            raise TranscriptTooLarge(f"{len(words)} words")
        now = iso_micros(utcnow())
        session_id = job.get("sessionId") or ""
        saved = self.records.save_transcript(owner, tid, text=transcript.text, words=words, duration=duration,
                                             billed_seconds=seconds, language=language, now=now,
                                             session_id=session_id, expires=utcnow() + self.retention)
        if not saved:
            item = self.records.get(owner, tid)  # the condition failed: done already, or not ours to finish
            if not item or item["status"] != "completed":
                self.meter.meter(job, seconds)
                status = item["status"] if item else "gone"
                raise TranscriptionNotRunning(f"Transcription {tid} is {status}; its transcript is not saved")
            logger.info("Transcript already saved (a retried collect)", extra={"transcription_id": tid})
            return self._completed(job, item)
        self.meter.meter(job, seconds)
        return self._completed(job, {"transcriptionId": tid, "sessionId": session_id, "language": language,
                                     "durationSeconds": duration, "words": words})

    def _completed(self, job: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        """The ``completed`` outcome (cleanup targets and the TranscriptReady event) of a saved transcript."""
        return {
            "status": "completed", "cleanup": cleanup_targets(job), "eventType": "TranscriptReady",
            "event": {"transcriptionId": job["transcriptionId"], "owner": job["owner"],
                      "sessionId": item.get("sessionId") or None, "language": item.get("language", job["language"]),
                      "durationSeconds": float(item.get("durationSeconds", 0)),
                      "wordCount": len(item.get("words") or [])},
        }

    # -- the failure path ------------------------------------------------------------------------
    def finish_late_job(self, name: str) -> bool:
        """See ``LateJobs.finish``: meter and clean up a job that outlived its workflow."""
        return self.late_jobs.finish(name)

    def record_failure(self, state: dict[str, Any]) -> dict[str, Any]:
        """Mark the transcription failed with a reason a person can act on; the outcome to clean
        up and announce.

        An outcome that is already terminal is kept: a transcription that completed (its collect
        saved the transcript, then failed to answer) stays completed and is announced as such; one
        already failed keeps its reason. A job Transcribe completed is metered whatever failed
        after it. A transcription that does not exist cleans up only an upload of ours that
        started the workflow (nothing else exists to clean)."""
        error = state.get("error") or {}
        name = str(error.get("Error", "States.Runtime"))
        cause = str(error.get("Cause", ""))
        job = state.get("job")
        found = (job["owner"], job["transcriptionId"]) if job else self._identify(state)
        item = self.records.get(*found) if found else None
        if job is None and item is not None:
            job = self._job(item)
        if job is None:
            return self._orphan(state, name)
        if self._job_completed(state, job):
            self.meter.meter_completed_job(job, item)  # settles its quota reservation too
        elif item is None or item["status"] != "completed":
            release(self.store, reservation_of(job))  # nothing was transcribed: nothing is billed
        if (kept := self._terminal(job, item, name)) is not None:
            return kept
        message = self._message(name, cause, job)
        code = name if name in FAILURE_MESSAGES or name == "UploadRejected" else "INTERNAL_ERROR"
        logger.warning("Transcription failed", extra={"error": name, "cause": redact_owners(cause)[:500],
                                                      "transcription_id": job.get("transcriptionId")})
        reason = {"code": code, "message": message}
        marked = item is None or self.records.mark_failed(job["owner"], job["transcriptionId"], reason,
                                                          now=iso_micros(utcnow()))
        if not marked:  # it ended meanwhile (or was removed): report what it ended as
            kept = self._terminal(job, self.records.get(job["owner"], job["transcriptionId"]), name)
            if kept is not None:
                return kept
        return self._failed(job, reason)

    def _job_completed(self, state: dict[str, Any], job: dict[str, Any]) -> bool:
        """Whether Transcribe completed (and billed) the job: as the workflow last saw it, or - when the
        workflow stopped waiting for a job it had started (polls ran out, a poll kept failing) - as
        Transcribe says now."""
        seen = (state.get("jobStatus") or {}).get("status")
        if seen == "COMPLETED":
            return True
        if seen == "FAILED" or "eventWait" not in state:  # the job failed, or was never started
            return False
        try:
            found = self.transcribe.get_transcription_job(TranscriptionJobName=job["jobName"])
        except (ClientError, BotoCoreError):
            logger.warning("Could not ask Transcribe whether the job completed", extra={"job_name": job["jobName"]})
            return False
        return found["TranscriptionJob"].get("TranscriptionJobStatus") == "COMPLETED"

    def _terminal(self, job: dict[str, Any], item: dict[str, Any] | None, error: str) -> dict[str, Any] | None:
        """The outcome of a transcription that already ended, kept as it is; None if it has not."""
        if item is not None and item["status"] == "completed":
            logger.info("Transcription already completed; its outcome is kept",
                        extra={"transcription_id": job["transcriptionId"], "error": error})
            return self._completed(job, item)
        if item is not None and item["status"] == "failed" and item.get("reason"):
            return self._failed(job, dict(item["reason"]))
        return None

    def _failed(self, job: dict[str, Any], reason: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "failed", "cleanup": cleanup_targets(job), "eventType": "TranscriptionFailed",
            "event": {"transcriptionId": job.get("transcriptionId"), "owner": job.get("owner"),
                      "sessionId": job.get("sessionId") or None,
                      "reason": {"code": str(reason.get("code")), "message": str(reason.get("message"))}},
        }

    def _orphan(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        """No transcription: nothing to mark or announce. An upload under our key layout that
        started the workflow is deleted (no one will transcribe it); nothing else exists."""
        key = str(((state.get("detail") or {}).get("object") or {}).get("key", ""))
        logger.warning("Workflow for a transcription that does not exist", extra={"error": name, "key": key[:300]})
        cleanup = {"bucket": self.bucket, "audioKey": key} if parse_key(key) else {}
        return {"status": "failed", "cleanup": cleanup}

    def _message(self, name: str, cause: str, job: dict[str, Any]) -> str:
        if name == "UploadRejected":
            try:
                return str(json.loads(cause).get("errorMessage")) or INTERNAL_MESSAGE
            except (ValueError, AttributeError):
                return INTERNAL_MESSAGE
        if name == "TranscriptionJobFailed":
            detail = ""
            try:
                found = self.transcribe.get_transcription_job(TranscriptionJobName=job["jobName"])
                reason = found["TranscriptionJob"].get("FailureReason")
                detail = f" ({reason})" if reason else ""
            except (ClientError, BotoCoreError):
                logger.warning("Could not read the failed job's reason")
            return FAILURE_MESSAGES[name].format(detail=detail)
        return FAILURE_MESSAGES.get(name, INTERNAL_MESSAGE)


def steps_from(env: Any) -> TranscriptionSteps:
    """The workflow's task steps, configured from a task function's environment
    (``parley.core.config.TranscriptionStepsEnv``), with the cached clients.

    The three task functions (transcription_prepare, _collect, _failure) are the same few lines
    calling one step each, on purpose: each is its own function so that its role grants only what
    that step touches (prepare reads uploads; collect reads transcripts and puts events; failure
    also reads the Transcribe job), which one shared function could not."""
    from parley.core import clients
    from parley.usage.publisher import publisher_from

    return TranscriptionSteps(Store(clients.table(env.table_name)), clients.client("s3"), clients.client("transcribe"),
                              bucket=env.audio_bucket_name, stage=env.stage, retention_days=env.data_retention_days,
                              publisher=publisher_from(env))
