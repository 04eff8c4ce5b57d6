"""The transcription state machine really executing on moto, its Lambda tasks our handlers.

Every path ends in cleanup: after each test, no audio, transcript file or Transcribe job is left
(except where a test makes a deletion fail for good, and checks exactly what is left).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from unittest import mock

import boto3
import pytest

from local_stack.speech import NO_OUTPUT, JobFailure
from parley.data import keys
from parley.speech.transcription.transcript import parse_transcript
from tests.conftest import WEBM, ApiClient, FakeTranscribe, transcribe_output

MACHINE = "TranscriptionStateMachine"
fixture = transcribe_output


def submit(api: ApiClient, workflows: Any, **extra: Any) -> tuple[str, Any]:
    """POST /transcriptions, then wait for the execution it started; (transcription id, result)."""
    response = api.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode(), **extra})
    assert response.status == 202, response.body
    transcription_id = response.json()["transcriptionId"]
    arn = next(a for a in workflows.executions(MACHINE) if a.endswith(transcription_id))
    return transcription_id, workflows.wait(arn)


def leftovers(bucket: str) -> dict[str, list[str]]:
    objects = boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    jobs = boto3.client("transcribe").list_transcription_jobs().get("TranscriptionJobSummaries", [])
    return {"objects": [o["Key"] for o in objects], "jobs": [j["TranscriptionJobName"] for j in jobs]}


def bus_events(workflows: Any, arn: str) -> list[dict[str, Any]]:
    """The PutEvents entries the execution sent (from its history)."""
    entries = []
    for event in workflows.history(arn):
        details = event.get("taskScheduledEventDetails") or {}
        if details.get("resource") == "putEvents":
            entries.extend(json.loads(details["parameters"])["Entries"])
    return entries


# -- the parser, against Transcribe's documented output ---------------------------------------------
def test_parser_attaches_punctuation_and_keeps_timings_and_confidences() -> None:
    transcript = parse_transcript(fixture("greeting"))
    assert transcript.text == "Hi, I'm Emma. How are you today?"
    assert [w.text for w in transcript.words] == ["Hi,", "I'm", "Emma.", "How", "are", "you", "today?"]
    assert (transcript.words[2].start, transcript.words[2].end, transcript.words[2].confidence) == (0.71, 1.18, 0.874)
    assert transcript.duration_seconds == 2.46 and transcript.language == "en-US"


def test_parser_takes_the_items_not_the_segment_alternatives() -> None:
    transcript = parse_transcript(fixture("alternatives"))
    assert " ".join(w.text for w in transcript.words) == transcript.text
    assert transcript.words[5].text == "rainforest" and transcript.words[5].confidence == 0.8977
    assert transcript.words[-1].text == "planet."


def test_parser_on_silence_and_on_garbage() -> None:
    silent = parse_transcript(fixture("silence"))
    assert (silent.text, silent.words, silent.duration_seconds) == ("", [], 0.0)
    from parley.speech.transcription.errors import TranscriptMalformed

    with pytest.raises(TranscriptMalformed):
        parse_transcript({"results": {"items": [{"type": "pronunciation", "alternatives": []}]}})


# -- the workflow's paths --------------------------------------------------------------------------
def test_success_saves_text_and_words_under_the_session_and_cleans_up(
        api: ApiClient, workflows: Any, transcribe: FakeTranscribe, aws: dict[str, str]) -> None:
    session_id = api.post("/sessions", {}).json()["sessionId"]

    transcription_id, result = submit(api, workflows, sessionId=session_id)

    assert result.status == "SUCCEEDED", result
    body = api.get(f"/transcriptions/{transcription_id}").json()
    assert body["status"] == "completed" and body["text"] == "Hi, I'm Emma. How are you today?"
    assert body["words"][0] == {"text": "Hi,", "start": 0.04, "end": 0.35, "confidence": 0.998}
    assert body["durationSeconds"] == 2.46 and body["reason"] is None
    item = boto3.resource("dynamodb").Table(aws["Table"]).get_item(Key={
        "PK": f"DEVICE#{api.device_id}", "SK": keys.session_transcript_sk(session_id, transcription_id)})["Item"]
    assert item["type"] == "TRANSCRIPT" and item["text"] == body["text"] and len(item["words"]) == 7
    assert float(item["durationSeconds"]) == 2.46 and item["language"] == "en-US"
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}
    published = bus_events(workflows, result.arn)
    assert [e["DetailType"] for e in published] == ["TranscriptReady"]
    assert published[0]["Detail"]["wordCount"] == 7 and published[0]["Detail"]["sessionId"] == session_id


def test_deleting_the_session_deletes_its_transcript(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                                     aws: dict[str, str]) -> None:
    session_id = api.post("/sessions", {}).json()["sessionId"]
    submit(api, workflows, sessionId=session_id)
    assert api.delete(f"/sessions/{session_id}").status == 204
    table = boto3.resource("dynamodb").Table(aws["Table"])
    left = table.query(KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)", ExpressionAttributeValues={
        ":pk": f"DEVICE#{api.device_id}", ":sk": f"SESSION#{session_id}#"})["Items"]
    assert left == []


def test_failed_job_is_failed_with_transcribes_reason(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                                      aws: dict[str, str]) -> None:
    transcribe.outcome = JobFailure("The media format provided does not match the detected media format.")

    transcription_id, result = submit(api, workflows)

    assert (result.status, result.error) == ("FAILED", "TranscriptionFailed")
    body = api.get(f"/transcriptions/{transcription_id}").json()
    assert body["status"] == "failed" and body["reason"]["code"] == "TranscriptionJobFailed"
    assert "does not match the detected media format" in body["reason"]["message"]
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}
    assert [e["DetailType"] for e in bus_events(workflows, result.arn)] == ["TranscriptionFailed"]


def test_timeout_after_the_last_poll(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                     aws: dict[str, str]) -> None:
    transcribe.outcome = None  # never finishes

    transcription_id, result = submit(api, workflows)

    assert result.status == "FAILED"
    assert workflows.states_entered(result.arn).count("GetJob") == 5  # MaxPolls in the tests
    assert "PollTimedOut" in workflows.states_entered(result.arn)
    body = api.get(f"/transcriptions/{transcription_id}").json()
    assert body["status"] == "failed" and body["reason"]["code"] == "TranscriptionTimedOut"
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}


@pytest.mark.parametrize(("outcome", "code"), [(NO_OUTPUT, "TranscriptMissing"),
                                               ({"results": "not a transcript"}, "TranscriptMalformed")])
def test_an_error_while_fetching_the_transcript(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                                aws: dict[str, str], outcome: Any, code: str) -> None:
    transcribe.outcome = outcome

    transcription_id, result = submit(api, workflows)

    assert result.status == "FAILED"
    body = api.get(f"/transcriptions/{transcription_id}").json()
    assert (body["status"], body["reason"]["code"], body["text"]) == ("failed", code, None)
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}


def _failing_delete(times: int, key_part: str) -> Any:
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    original = S3Backend.delete_object
    calls = {"n": 0}

    def delete_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        if key_part in key_name and calls["n"] < times:
            calls["n"] += 1
            raise S3ClientError("InternalError", "We encountered an internal error. Please try again.")
        return original(self, bucket_name, key_name, *args, **kwargs)

    return mock.patch.object(S3Backend, "delete_object", delete_object)


def test_a_transient_error_while_cleaning_up_is_retried(api: ApiClient, workflows: Any,
                                                        transcribe: FakeTranscribe, aws: dict[str, str]) -> None:
    with _failing_delete(1, "audio/"):
        transcription_id, result = submit(api, workflows)

    assert result.status == "SUCCEEDED", result
    assert api.get(f"/transcriptions/{transcription_id}").json()["status"] == "completed"
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}


def test_a_lasting_error_while_cleaning_up_fails_the_execution_but_not_the_transcription(
        api: ApiClient, workflows: Any, transcribe: FakeTranscribe, aws: dict[str, str]) -> None:
    with _failing_delete(99, "audio/"):
        transcription_id, result = submit(api, workflows)

    assert (result.status, result.error) == ("FAILED", "CleanupFailed")
    assert api.get(f"/transcriptions/{transcription_id}").json()["status"] == "completed"
    left = leftovers(aws["AudioBucket"])
    assert left["jobs"] == [] and [k.split("/")[0] for k in left["objects"]] == ["audio"]  # only what failed
    assert [e["DetailType"] for e in bus_events(workflows, result.arn)] == ["TranscriptReady"]


# -- the upload path: S3 Object Created -> EventBridge -> the same state machine -------------------------
def object_created(bucket: str, key: str, size: int) -> dict[str, Any]:
    """The event S3 sends to EventBridge (documented shape)."""
    return {"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
            "source": "aws.s3", "account": "123456789012", "time": "2026-11-22T01:54:30Z", "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": size, "etag": "b1946ac92492d2347c6235b4d2611184",
                                  "sequencer": "00617F08299329D189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                       "source-ip-address": "1.2.3.4", "reason": "PutObject"}}


def rule_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's matching (moto's implementation; its TestEventPattern API answers nothing)."""
    from moto.events.models import EventPattern

    return EventPattern.load(json.dumps(pattern)).matches_event(event)


def _rule_pattern(stack: Any) -> dict[str, Any]:
    event = stack.resolve(stack.resources[MACHINE]["Properties"]["Events"]["AudioUploaded"])
    return event["Properties"]["Pattern"]


@pytest.mark.parametrize(("body", "status", "code"), [
    (WEBM, "completed", None),
    (b"MZ\x90\x00 this is a program, not audio", "failed", "UploadRejected"),
])
def test_an_upload_starts_the_same_workflow(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                            aws: dict[str, str], stack: Any, body: bytes, status: str,
                                            code: str | None) -> None:
    created = api.post("/transcriptions/upload-url", {"format": "webm", "sizeBytes": 1000})
    assert created.status == 201, created.body
    upload = created.json()
    key = upload["fields"]["key"]
    boto3.client("s3").put_object(Bucket=aws["AudioBucket"], Key=key, Body=body)
    event = object_created(aws["AudioBucket"], key, len(body))
    assert rule_matches(_rule_pattern(stack), event)
    assert not rule_matches(_rule_pattern(stack), object_created(aws["AudioBucket"], "audio/x.webm", 9))

    result = workflows.wait(workflows.start(MACHINE, event))

    found = api.get(f"/transcriptions/{upload['transcriptionId']}").json()
    assert found["status"] == status, (found, result)
    assert (result.status, result.error) == (("SUCCEEDED", None) if code is None else ("FAILED", "TranscriptionFailed"))
    assert (found["reason"] or {}).get("code") == code
    if code:
        assert "not webm audio" in found["reason"]["message"]
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}


def test_a_repeated_s3_event_does_not_transcribe_twice(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                                       aws: dict[str, str]) -> None:
    upload = api.post("/transcriptions/upload-url", {"format": "webm", "sizeBytes": 1000}).json()
    key = upload["fields"]["key"]
    boto3.client("s3").put_object(Bucket=aws["AudioBucket"], Key=key, Body=WEBM)
    event = object_created(aws["AudioBucket"], key, len(WEBM))
    first = workflows.wait(workflows.start(MACHINE, event))
    second = workflows.wait(workflows.start(MACHINE, event))
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert workflows.states_entered(second.arn) == ["Prepare", "AlreadyStarted"]
    assert len(transcribe.jobs) >= 1 and len(set(transcribe.jobs)) == 1


# -- metering: every job Transcribe completed, by the length it billed --------------------------------
def _metered(aws: dict[str, str], api: ApiClient, bus: Any) -> list[dict[str, Any]]:
    bus.pump()
    items = boto3.resource("dynamodb").Table(aws["Table"]).query(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
        ExpressionAttributeValues={":pk": f"DEVICE#{api.device_id}", ":sk": "USAGE#MONTH#"})["Items"]
    return items


@pytest.mark.parametrize(("outcome", "seconds"), [
    ("greeting", 3.0),  # the words end at 2.46 s; Transcribe bills the whole 3 s recording
    (NO_OUTPUT, 3.0),  # no transcript: the recording's length
    ({"results": "not a transcript"}, 3.0),
])
def test_a_completed_job_is_metered_by_its_recordings_length(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                                             aws: dict[str, str], bus: Any, outcome: Any,
                                                             seconds: float) -> None:
    from tests.test_audio_length import wav

    transcribe.outcome = fixture(outcome) if isinstance(outcome, str) else outcome
    response = api.post("/transcriptions", {"audio": base64.b64encode(wav(3.0)).decode()})
    assert response.status == 202, response.body
    transcription_id = response.json()["transcriptionId"]
    workflows.wait(next(a for a in workflows.executions(MACHINE) if a.endswith(transcription_id)))

    month = _metered(aws, api, bus)
    assert [(float(m["audioSeconds"]), int(m["events"])) for m in month] == [(seconds, 1)]


def test_a_completed_job_of_unknown_length_is_metered_at_transcribes_minimum(
        api: ApiClient, workflows: Any, transcribe: FakeTranscribe, aws: dict[str, str], bus: Any) -> None:
    from parley.speech.transcription.metering import MIN_BILLED_SECONDS

    transcribe.outcome = NO_OUTPUT
    submit(api, workflows)  # WEBM: a header and no clusters, so no length
    month = _metered(aws, api, bus)
    assert [(float(m["audioSeconds"]), int(m["events"])) for m in month] == [(MIN_BILLED_SECONDS, 1)]
