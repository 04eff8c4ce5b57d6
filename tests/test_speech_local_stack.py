"""`make run` end to end for speech: /speech answers audio, and both ways into the transcription
workflow (inline audio, and a presigned upload whose arrival starts it) complete over HTTP."""

from __future__ import annotations

import base64
import time
import urllib.request
import uuid

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


def post_form(upload: dict, data: bytes) -> int:
    """What a browser's FormData does with an upload-url answer: its fields, then the file, last."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in upload["fields"].items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{upload["fileField"]}"; filename="a"\r\n'
                 f'Content-Type: {upload["contentType"]}\r\n\r\n'.encode() + data + f"\r\n--{boundary}--\r\n".encode())
    request = urllib.request.Request(upload["uploadUrl"], data=b"".join(parts), method=upload["method"],
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_a_presigned_upload_starts_the_workflow(local_url: str) -> None:
    status, _, upload = call(local_url, "POST", "/transcriptions/upload-url",
                             {"format": "wav", "sizeBytes": len(WAV)})
    assert status == 201, upload
    assert post_form(upload, WAV) in (200, 204)
    assert _until_done(local_url, upload["transcriptionId"])["status"] == "completed"
