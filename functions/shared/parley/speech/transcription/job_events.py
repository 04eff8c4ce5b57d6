"""The event-driven wait: Transcribe's job-state events -> the waiting execution.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from parley.core.models import ApiModel
from parley.core.observability import logger
from parley.data.store import Store, error_code
from parley.data.transcriptions import TranscriptionRecords
from parley.speech.transcription.objects import job_name
from parley.speech.transcription.steps import TranscriptionSteps

# -- the event-driven wait: Transcribe's job-state events -> the waiting execution ----------------
# After StartJob the state machine stores its task token under the job's name (keys.transcribe_job_pk)
# and waits (``aws-sdk:dynamodb:putItem.waitForTaskToken``). Transcribe announces a finished job on the
# default bus ("Transcribe Job State Change"); the rule sends our jobs' COMPLETED/FAILED events to the
# job-events function, which resumes the execution with ``SendTaskSuccess {"status": ...}``. Anything
# that goes wrong here costs time, not the transcription: the wait times out into the poll loop.
TranscribeJobStatus = Literal["QUEUED", "IN_PROGRESS", "COMPLETED", "FAILED"]
JobEventOutcome = Literal["resumed", "already-resumed", "not-waiting", "not-ours", "not-final", "finished-late"]
# SendTaskSuccess errors meaning "nobody waits for this token any more": the task timed out into
# the poll loop, the token was used by an earlier copy of the event, or the execution has ended.
STALE_TOKEN_ERRORS = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


class TranscribeJobStateDetail(BaseModel):
    """``detail`` of Transcribe's "Transcribe Job State Change" event (documented shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    transcription_job_name: str = Field(alias="TranscriptionJobName", min_length=1, max_length=200)
    transcription_job_status: TranscribeJobStatus = Field(alias="TranscriptionJobStatus")
    failure_reason: str | None = Field(None, alias="FailureReason")


class TranscribeJobStateChange(BaseModel):
    """The EventBridge event Transcribe puts on the account's default bus."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = ""
    source: Literal["aws.transcribe"]
    detail_type: Literal["Transcribe Job State Change"] = Field(alias="detail-type")
    detail: TranscribeJobStateDetail


class JobEventResult(ApiModel):
    job_name: str
    status: str
    outcome: JobEventOutcome


class JobEvents:
    """Resume the execution waiting for a Transcribe job (idempotent: a repeated or late event is
    logged and ignored). A job that COMPLETED when no execution waits for it any more, and whose
    workflow has ended, is finished here: metered and cleaned up (``TranscriptionSteps.finish_late_job``)."""

    def __init__(self, store: Store, sfn: Any, *, stage: str, steps: TranscriptionSteps | None = None) -> None:
        self.records = TranscriptionRecords(store)
        self.sfn = sfn
        self.steps = steps
        self.our_jobs = re.compile(rf"^{re.escape(job_name(stage, ''))}[0-9A-HJKMNP-TV-Z]{{26}}$")

    def handle(self, event: dict[str, Any]) -> JobEventResult:
        change = TranscribeJobStateChange.model_validate(event)
        name, status = change.detail.transcription_job_name, change.detail.transcription_job_status

        def result(outcome: JobEventOutcome) -> JobEventResult:
            logger.info("Transcribe job event", extra={"job_name": name, "job_status": status, "outcome": outcome,
                                                       "event_id": change.id})
            return JobEventResult(job_name=name, status=status, outcome=outcome)

        if not self.our_jobs.match(name):  # the rule matches our prefix; another stage may share it
            return result("not-ours")
        if status not in ("COMPLETED", "FAILED"):
            return result("not-final")
        item = self.records.job_wait(name)
        if not item or not item.get("taskToken"):
            # No execution waits (its token was never stored, or expired): if one runs, it polls.
            return result(self._late(name, status) or "not-waiting")
        output = {"status": status, "jobName": name}
        if change.detail.failure_reason:
            output["failureReason"] = change.detail.failure_reason[:1000]
        try:
            self.sfn.send_task_success(taskToken=item["taskToken"], output=json.dumps(output))
        except ClientError as exc:
            if error_code(exc) in STALE_TOKEN_ERRORS:
                return result(self._late(name, status) or "already-resumed")
            raise  # transient: Lambda retries the asynchronous invocation; the poll is the safety net
        return result("resumed")

    def _late(self, name: str, status: str) -> JobEventOutcome | None:
        """``finished-late`` if nobody else will meter and clean up this completed job."""
        if status == "COMPLETED" and self.steps is not None and self.steps.finish_late_job(name):
            return "finished-late"
        return None
