"""Setups and checks for the speech functions' sample events (registered in tests/test_events.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from parley.core.ids import iso_micros, utcnow
from parley.data import keys

OWNER = "DEVICE#sample-device-0001"
GREETING = Path(__file__).resolve().parent / "fixtures" / "transcribe" / "greeting.json"


def _transcription_id(event: dict[str, Any]) -> str:
    event = event.get("input") or event  # the workflow's Prepare task wraps the execution's input
    return str(event.get("transcriptionId") or event["pathParameters"]["transcriptionId"])


def queued_transcription(names: dict[str, str], event: dict[str, Any]) -> None:
    """The transcription the sample event names, queued, as POST /transcriptions leaves it."""
    tid = _transcription_id(event)
    now = iso_micros(utcnow())  # a record its workflow cannot have outlived yet
    boto3.resource("dynamodb").Table(names["Table"]).put_item(Item={
        "PK": OWNER, "SK": keys.transcription_sk(tid), "type": "TRANSCRIPTION", "transcriptionId": tid,
        "status": "queued", "source": "api", "format": "webm", "language": "en-US",
        "audioKey": f"audio/DEVICE/sample-device-0001/{tid}.webm",
        "createdAt": now, "updatedAt": now})


def running_transcription_with_output(names: dict[str, str], event: dict[str, Any]) -> None:
    """A running transcription whose Transcribe output file is where the event's job says."""
    queued_transcription(names, event)
    boto3.resource("dynamodb").Table(names["Table"]).update_item(
        Key={"PK": OWNER, "SK": keys.transcription_sk(_transcription_id(event))},
        UpdateExpression="SET #st = :running", ExpressionAttributeNames={"#st": "status"},
        ExpressionAttributeValues={":running": "running"})
    job = event["job"]
    s3 = boto3.client("s3")
    if job["bucket"] not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=job["bucket"])
    s3.put_object(Bucket=job["bucket"], Key=job["transcriptKey"], Body=GREETING.read_bytes())


def prepared(result: Any) -> None:
    assert result["mediaFormat"] == "webm" and result["jobName"].endswith(result["transcriptionId"])
    assert result["mediaUri"].startswith("s3://") and result["transcriptKey"].startswith("transcripts/DEVICE/")


def collected(result: Any) -> None:
    assert (result["status"], result["eventType"]) == ("completed", "TranscriptReady")
    assert result["event"]["wordCount"] == 7 and set(result["cleanup"]) == {"bucket", "audioKey", "transcriptKey",
                                                                           "jobName"}


def failed(result: Any) -> None:
    assert (result["status"], result["eventType"]) == ("failed", "TranscriptionFailed")
    assert result["event"]["reason"]["code"] == "TranscriptionTimedOut"


def spoken(result: Any) -> None:
    assert result["statusCode"] == 200, result
    body = json.loads(result["body"])
    assert (body["voice"], body["engine"], body["contentType"]) == ("Amy", "neural", "audio/mpeg")


def stream_url(result: Any) -> None:
    assert result["statusCode"] == 200, result
    assert json.loads(result["body"])["url"].startswith("wss://transcribestreaming.")


def transcription_read(result: Any) -> None:
    assert result["statusCode"] == 200, result
    assert json.loads(result["body"])["status"] == "queued"


def waiting_execution_token(names: dict[str, str], event: dict[str, Any]) -> None:
    """A task token stored for the event's job, as the workflow's wait leaves it (a token no running
    execution holds any more). The sample names the ``dev`` stage (``sam local invoke``'s default);
    the tests run as stage ``test``, so the job name is switched to it here."""
    detail = event["detail"]
    detail["TranscriptionJobName"] = detail["TranscriptionJobName"].replace("parley-dev-", "parley-test-", 1)
    boto3.resource("dynamodb").Table(names["Table"]).put_item(Item={
        "PK": keys.transcribe_job_pk(detail["TranscriptionJobName"]), "SK": keys.JOB_WAIT_SK,
        "type": "TRANSCRIBE_WAIT", "taskToken": "AQCEAAAAKgAAAAMAAAAAAAAAAf0sample",
        "transcriptionId": "01KAQZ4M7Q0W4V9Y2T3X5B6C8D",
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:parley-test-transcription:"
                        "01KAQZ4M7Q0W4V9Y2T3X5B6C8D",
        "expiresAt": 1795000000})


def job_event_handled(result: Any) -> None:
    # The token was found and sent; Step Functions answered that nobody waits for it: ignored, no error.
    assert result == {"jobName": "parley-test-01KAQZ4M7Q0W4V9Y2T3X5B6C8D", "status": "COMPLETED",
                      "outcome": "already-resumed"}, result
