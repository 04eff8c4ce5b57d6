"""`make run` end to end for speech: /speech answers audio, and both ways into the transcription
workflow (inline audio, and a presigned upload whose arrival starts it) complete over HTTP."""

from __future__ import annotations

import base64
import time
import urllib.request

from tests.test_local_stack import call, local_url

__all__ = ["local_url"]  # the module-scoped local stack fixture, reused here

WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(40)


def _until_done(url: str, transcription_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        status, _, body = call(url, "GET", f"/transcriptions/{transcription_id}")
        assert status == 200, body
        if body["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return body  # type: ignore[no-any-return]


def test_speech_in_the_local_stack(local_url: str) -> None:
    status, _, body = call(local_url, "POST", "/speech", {"text": "Hello from the local stack.", "accent": "UK"})
    assert status == 200, body
    assert (body["voice"], body["engine"]) == ("Amy", "neural")
    assert body["contentType"] in ("audio/mpeg", "audio/wav") and base64.b64decode(body["audio"])


def test_inline_audio_is_transcribed_by_the_workflow(local_url: str) -> None:
    status, _, created = call(local_url, "POST", "/transcriptions", {"audio": base64.b64encode(WAV).decode()})
    assert status == 202, created
    done = _until_done(local_url, created["transcriptionId"])
    assert done["status"] == "completed" and done["text"] and done["words"][0]["end"] > 0


def test_a_presigned_upload_starts_the_workflow(local_url: str) -> None:
    status, _, upload = call(local_url, "POST", "/transcriptions/upload-url", {"format": "wav"})
    assert status == 201, upload
    request = urllib.request.Request(upload["uploadUrl"], data=WAV, method="PUT", headers=upload["headers"])
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert _until_done(local_url, upload["transcriptionId"])["status"] == "completed"
