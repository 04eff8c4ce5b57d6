"""The /transcriptions API: validation of inline audio, the upload URL, reading, the streaming URL."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from parley.speech.transcription.audio import MAX_INLINE_AUDIO_BYTES, MAX_UPLOAD_BYTES, detect_format
from tests.conftest import ApiClient, assert_error

SAMPLES = {
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(40),
    "ogg": b"OggS\x00\x02" + bytes(40),
    "wav": b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(40),
    "mp3": b"ID3\x04\x00\x00" + bytes(40),
    "m4a": b"\x00\x00\x00\x20ftypM4A " + bytes(40),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_formats_are_recognised_by_their_magic_bytes(fmt: str) -> None:
    assert detect_format(SAMPLES[fmt]) == fmt
    assert detect_format(b"\xff\xfb\x90\x00") == "mp3"  # an MP3 frame without an ID3 tag
    assert detect_format(b"%PDF-1.7") is None


@pytest.mark.parametrize(("audio", "status", "code"), [
    ("not base64!!", 400, "INVALID_AUDIO"),
    ("", 422, "VALIDATION_ERROR"),
    (b64(b""), 422, "VALIDATION_ERROR"),
    ("====", 400, "INVALID_AUDIO"),
    (b64(b"%PDF-1.7 not audio at all"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    (b64(b"\x1a\x45\xdf\xa3" + bytes(MAX_INLINE_AUDIO_BYTES)), 413, "PAYLOAD_TOO_LARGE"),
])
def test_inline_audio_is_validated(api: ApiClient, aws: dict[str, str], audio: str, status: int, code: str) -> None:
    assert_error(api.post("/transcriptions", {"audio": audio}), status, code)
    assert boto3.client("s3").list_objects_v2(Bucket=aws["AudioBucket"]).get("KeyCount") == 0


def test_a_body_beyond_lambdas_payload_limit_is_413(api: ApiClient) -> None:
    assert_error(api.post("/transcriptions", {"audio": "A" * 6_100_000}), 413, "PAYLOAD_TOO_LARGE")


def test_declared_format_must_match_the_content(api: ApiClient) -> None:
    error = assert_error(api.post("/transcriptions", {"audio": b64(SAMPLES["ogg"]), "format": "webm"}),
                         415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"][0]["detected"] == "ogg"


def test_an_unknown_session_is_404(api: ApiClient) -> None:
    response = api.post("/transcriptions", {"audio": b64(SAMPLES["webm"]), "sessionId": "01M80GFT5V4W9D5HQ83GYN04J6"})
    assert_error(response, 404, "NOT_FOUND")


def test_accepted_audio_is_stored_under_the_owner_and_queued(api: ApiClient, workflows: Any,
                                                             aws: dict[str, str]) -> None:
    response = api.post("/transcriptions", {"audio": "data:audio/webm;codecs=opus;base64," + b64(SAMPLES["webm"])})

    assert response.status == 202, response.body
    body = response.json()
    assert body["status"] == "queued" and body["language"] == "en-US"
    executions = workflows.executions("TranscriptionStateMachine")
    assert [a.rsplit(":", 1)[1] for a in executions] == [body["transcriptionId"]]
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws["AudioBucket"]).get("Contents", [])]
    assert keys in ([f"audio/DEVICE/{api.device_id}/{body['transcriptionId']}.webm"], [])  # [] once cleaned up
    # another owner cannot read it
    assert_error(api.as_device("device-someone-else").get(f"/transcriptions/{body['transcriptionId']}"),
                 404, "NOT_FOUND")


def upload_policy(upload: dict[str, Any]) -> dict[str, Any]:
    """The S3 POST policy an upload-url answer carries (base64 JSON in ``fields.policy``)."""
    return json.loads(base64.b64decode(upload["fields"]["policy"]))  # type: ignore[no-any-return]


def test_upload_url_is_one_short_lived_post_signed_for_its_size_under_the_owner(api: ApiClient) -> None:
    response = api.post("/transcriptions/upload-url", {"format": "m4a", "language": "en-GB", "sizeBytes": 250_000})

    assert response.status == 201, response.body
    body = response.json()
    key = f"uploads/DEVICE/{api.device_id}/{body['transcriptionId']}.m4a"
    # the answer says how to use it: a multipart POST of these fields, then the file
    assert (body["method"], body["fileField"], body["contentType"]) == ("POST", "file", "audio/mp4")
    assert body["fields"]["key"] == key and body["fields"]["Content-Type"] == "audio/mp4"
    assert (body["minBytes"], body["maxBytes"]) == (1, 250_000)
    # and S3 enforces it: the signed policy names the key, the type and the size range
    policy = upload_policy(body)
    assert ["content-length-range", 1, 250_000] in policy["conditions"]
    assert {"Content-Type": "audio/mp4"} in policy["conditions"] and {"key": key} in policy["conditions"]
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(seconds=250) < expires - datetime.now(tz=UTC) <= timedelta(seconds=300)
    found = api.get(f"/transcriptions/{body['transcriptionId']}").json()
    assert (found["status"], found["language"]) == ("queued", "en-GB")


@pytest.mark.parametrize("size", [None, 0, MAX_UPLOAD_BYTES + 1])
def test_upload_url_needs_the_recordings_size_within_the_limit(api: ApiClient, size: int | None) -> None:
    body = {"format": "webm"} if size is None else {"format": "webm", "sizeBytes": size}
    error = assert_error(api.post("/transcriptions/upload-url", body), 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "body.sizeBytes"


@pytest.mark.parametrize("transcription_id", ["nope", "01M80GFT5V4W9D5HQ83GYN04J6"])
def test_unknown_transcription_is_404(api: ApiClient, transcription_id: str) -> None:
    assert_error(api.get(f"/transcriptions/{transcription_id}"), 404, "NOT_FOUND")


def test_stream_url_is_a_presigned_transcribe_websocket(api: ApiClient) -> None:
    response = api.get("/transcriptions/stream-url")

    assert response.status == 200, response.body
    body = response.json()
    url = urlsplit(body["url"])
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == (
        "wss", "transcribestreaming.us-east-1.amazonaws.com:8443", "/stream-transcription-websocket")
    assert (query["language-code"], query["media-encoding"], query["sample-rate"]) == (["en-US"], ["pcm"], ["16000"])
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/transcribe/aws4_request")
    assert query["X-Amz-SignedHeaders"] == ["host"] and len(query["X-Amz-Signature"][0]) == 64
    assert (body["mediaEncoding"], body["sampleRate"]) == ("pcm", 16000)


def test_stream_url_function_may_only_stream_and_meter(stack: Any) -> None:
    """Its credentials sign the URL: besides streaming, it may only reserve quota and publish usage."""
    props = stack.resources["TranscriptionStreamUrlFunction"]["Properties"]
    # Its own statements, and those of the shared managed policies it names (UsagePublishingPolicy).
    documents = [stack.resources[p["Ref"]]["Properties"]["PolicyDocument"] if "Ref" in p else p
                 for p in props["Policies"]]
    statements = [s for d in documents for s in d["Statement"]]
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == ["dynamodb:GetItem", "dynamodb:UpdateItem", "events:PutEvents", "sqs:SendMessage",
                       "transcribe:StartStreamTranscriptionWebSocket"]
