"""Cleaning up after a transcription: what the workflow's cleanup states delete, and a job that
Transcribe completed after its workflow stopped waiting for it (nobody else will meter it or
delete its files).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

from botocore.exceptions import ClientError

from parley.core.observability import logger
from parley.data.store import error_code
from parley.data.transcriptions import TranscriptionRecords
from parley.speech.transcription.audio import FORMATS
from parley.speech.transcription.metering import JobMeter
from parley.speech.transcription.objects import job_name, parse_key, transcript_key


def cleanup_targets(job: dict[str, Any]) -> dict[str, str]:
    """What the workflow's cleanup states delete: the recording, the transcript file, the job."""
    return {k: str(job[k]) for k in ("bucket", "audioKey", "transcriptKey", "jobName")}


@dataclass
class LateJobs:
    records: TranscriptionRecords
    s3: Any
    transcribe: Any
    meter: JobMeter
    _: KW_ONLY
    bucket: str
    stage: str

    def finish(self, name: str) -> bool:
        """A job Transcribe completed after its workflow stopped waiting for it (its polls ran out,
        its polling kept failing, it timed out, it was stopped): Transcribe billed it, so meter it
        (once: the same event id as every other path), and delete its transcript file and the job,
        which no workflow will. False - nothing done - while a workflow still owns the
        transcription (it collects and meters the job itself), or when the job is already gone."""
        try:
            found = self.transcribe.get_transcription_job(TranscriptionJobName=name)["TranscriptionJob"]
        except ClientError as exc:
            if error_code(exc) in ("NotFoundException", "BadRequestException"):
                return False  # deleted: its workflow cleaned up after it
            raise
        media = str((found.get("Media") or {}).get("MediaFileUri", ""))
        parsed = parse_key(media.removeprefix(f"s3://{self.bucket}/"))
        if parsed is None or job_name(self.stage, parsed.transcription_id) != name:
            logger.warning("A completed job whose recording is not ours", extra={"job_name": name})
            return False
        item = self.records.get(parsed.owner, parsed.transcription_id)
        if item is not None and item["status"] in ("queued", "running"):
            return False
        job = {"transcriptionId": parsed.transcription_id, "owner": parsed.owner, "bucket": self.bucket,
               "audioKey": media.removeprefix(f"s3://{self.bucket}/"), "mediaFormat": FORMATS[parsed.fmt][0],
               "transcriptKey": transcript_key(parsed.owner, parsed.transcription_id), "jobName": name}
        if item is None or item["status"] != "completed":  # a completed one was collected and metered
            self.meter.meter_completed_job(job, item)
        logger.warning("Finished a job Transcribe completed after its workflow ended",
                       extra={"job_name": name, "was": item["status"] if item else "gone"})
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=job["transcriptKey"])
            self.transcribe.delete_transcription_job(TranscriptionJobName=name)
        except ClientError as exc:
            if error_code(exc) not in ("NotFoundException", "BadRequestException"):
                raise  # Lambda retries the event; metering again is counted once
        return True
