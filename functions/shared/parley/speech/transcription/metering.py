"""What a Transcribe job is billed, published once: every job Transcribe completed is metered on
every path out of the workflow (collect, the failure step, a late job event), under one event id.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from parley.core.errors import ServiceUnavailable
from parley.core.observability import logger
from parley.data.store import error_code
from parley.speech.transcription.errors import TRANSIENT_S3_CODES, TranscriptMalformed, TranscriptMissing, transient
from parley.speech.transcription.transcript import Transcript, parse_transcript
from parley.usage.events import UsageEvent
from parley.usage.quota import Reservation

# Transcribe bills at least this much audio for a job; metered when nothing tells a job's length.
MIN_BILLED_SECONDS = 15.0


def reservation_of(job: dict[str, Any]) -> Reservation | None:
    """The quota reservation a job (or a transcription record) carries, if any."""
    if not job.get("reservationId") or not job.get("owner"):
        return None
    return Reservation(id=str(job["reservationId"]), owner=str(job["owner"]), tokens=0,
                       cost_usd=float(job.get("reservedCostUsd") or 0))


class JobMeter:
    """Reads a job's transcript and recording (S3) and publishes its usage event."""

    def __init__(self, s3: Any, publisher: Any) -> None:
        self.s3 = s3
        self.publisher = publisher

    def read_transcript(self, job: dict[str, Any]) -> Transcript:
        """Transcribe's output file, parsed. TranscriptMissing / TranscriptMalformed name what is
        wrong with it; ServiceUnavailable, that S3 could not answer."""
        try:
            body = self.s3.get_object(Bucket=job["bucket"], Key=job["transcriptKey"])["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise TranscriptMissing(f"The transcript file of {job['transcriptionId']} does not exist") from exc
            if error_code(exc) in TRANSIENT_S3_CODES:
                raise transient(exc, "Reading the transcript") from exc
            raise
        except (BotoCoreError, OSError) as exc:
            raise transient(exc, "Reading the transcript") from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise TranscriptMalformed("The output file is not JSON") from exc
        return parse_transcript(document)


    def recording_seconds(self, job: dict[str, Any]) -> float | None:
        """The recording's length from its container (two ranged reads), or None."""
        from parley.speech.audio_length import WINDOW, audio_seconds

        fmt = job.get("mediaFormat") or job["audioKey"].rsplit(".", 1)[-1]
        try:
            head_part = self.s3.get_object(Bucket=job["bucket"], Key=job["audioKey"], Range=f"bytes=0-{WINDOW - 1}")
            head = head_part["Body"].read()
            size = int(str(head_part.get("ContentRange", "")).rsplit("/", 1)[-1] or len(head)) \
                if head_part.get("ContentRange") else len(head)
            tail = head
            if size > WINDOW:
                tail = self.s3.get_object(Bucket=job["bucket"], Key=job["audioKey"],
                                          Range=f"bytes=-{WINDOW}")["Body"].read()
        except (ClientError, BotoCoreError, OSError, ValueError) as exc:
            logger.info("Could not read the recording's length", extra={"error": type(exc).__name__})
            return None
        return audio_seconds(head, tail, size, fmt)

    def billed_seconds(self, job: dict[str, Any], transcript: Transcript | None) -> float:
        """What Transcribe billed for the job, as far as we can tell: the longer of the recording
        (its container) and the transcript (its last word); Transcribe's minimum when neither says."""
        known = [s for s in (self.recording_seconds(job), transcript.duration_seconds if transcript else None) if s]
        return round(max(known), 3) if known else MIN_BILLED_SECONDS

    def meter(self, job: dict[str, Any], seconds: float) -> None:
        """Publish the job's usage event. Its id is the transcription's, so however many paths
        meter the same job (a retried collect, the failure step after it) it is counted once."""
        if self.publisher is None:
            return
        self.publisher.publish(UsageEvent(
            event_id=f"stt-{job['transcriptionId']}", owner=job["owner"], product="tutor", engine="transcribe",
            model="standard", operation="stt", audio_seconds=seconds).settling(reservation_of(job)))

    def meter_completed_job(self, job: dict[str, Any], item: dict[str, Any] | None) -> None:
        """Meter a job Transcribe completed whose collect did not finish: from the saved transcript
        if there is one, else the transcript file, else the recording."""
        if item and item.get("billedSeconds") is not None:
            self.meter(job, float(item["billedSeconds"]))
            return
        try:
            transcript: Transcript | None = self.read_transcript(job)
        except (TranscriptMissing, TranscriptMalformed, ServiceUnavailable, ClientError):
            transcript = None
        self.meter(job, self.billed_seconds(job, transcript))
