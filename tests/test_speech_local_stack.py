"""`make run` end to end for speech, on real audio: /speech answers MP3 that the transcription workflow
then recognises (inline), a browser-like WebM/Opus recording made with PyAV goes through a presigned
upload, a streaming client gets the local emulator's URL, and S3 refuses an upload that breaks
what its URL was signed for."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

from local_stack import audio, voices
from parley.speech.transcription.models import UploadUrlRequest
from tests.speech_samples import SENTENCES, word_error_rate
from tests.test_local_stack import call, local_url

__all__ = ["local_url"]  # the module-scoped local stack fixture, reused here

WER_BOUND = 0.35


def _upload_request(fmt: str, size: int) -> dict[str, Any]:
    """The upload-url body (the recording's size where the API asks for it)."""
    return {"format": fmt, **({"sizeBytes": size} if "size_bytes" in UploadUrlRequest.model_fields else {})}


def _until_done(url: str, transcription_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status, _, body = call(url, "GET", f"/transcriptions/{transcription_id}")
        assert status == 200, body
        if body["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return body  # type: ignore[no-any-return]


def _assert_heard(done: dict[str, Any], spoken: str, seconds: float) -> None:
    assert done["status"] == "completed", done
    assert word_error_rate(spoken, done["text"]) <= WER_BOUND, (spoken, done["text"])
    assert done["words"] and all(0 <= w["start"] < w["end"] <= seconds + 0.05 for w in done["words"]), done
    assert all(0 <= w["confidence"] <= 1 for w in done["words"])


def test_speech_is_mp3_that_the_transcription_workflow_recognises(local_url: str) -> None:
    spoken = SENTENCES[0]
    status, _, speech = call(local_url, "POST", "/speech", {"text": spoken, "accent": "US", "gender": "female"})
    assert status == 200, speech
    mp3 = base64.b64decode(speech["audio"])
    assert speech["contentType"] == "audio/mpeg" and mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0
    seconds = audio.decode(mp3).seconds

    status, _, created = call(local_url, "POST", "/transcriptions", {"audio": speech["audio"], "format": "mp3"})
    assert status == 202, created
    _assert_heard(_until_done(local_url, created["transcriptionId"]), spoken, seconds)


def test_a_webm_opus_recording_uploaded_with_a_presigned_url_is_recognised(local_url: str) -> None:
    spoken = SENTENCES[1]
    pcm = voices.synthesize(spoken, voices.VOICES["Joanna"])
    recording = audio.webm_opus(pcm, voices.ESPEAK_RATE)  # what a browser's MediaRecorder makes
    seconds = audio.decode(recording).seconds
    status, _, upload = call(local_url, "POST", "/transcriptions/upload-url", _upload_request("webm", len(recording)))
    assert status == 201, upload
    _send_upload(upload, recording)
    _assert_heard(_until_done(local_url, upload["transcriptionId"]), spoken, seconds)


def _send_upload(upload: dict[str, Any], data: bytes, content_type: str | None = None) -> int:
    """PUT (or POST, for a presigned POST) the recording as the upload URL says; the HTTP status."""
    if upload.get("method", "PUT") == "POST":
        boundary = "parley-test-boundary"
        fields = {**upload["fields"], **({"Content-Type": content_type} if content_type else {})}
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in fields.items()]
        file_type = content_type or upload["contentType"]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{upload["fileField"]}"; '
                     f'filename="audio"\r\nContent-Type: {file_type}\r\n\r\n'.encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(upload["uploadUrl"], data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    else:
        headers = {**upload["headers"], **({"Content-Type": content_type} if content_type else {})}
        request = urllib.request.Request(upload["uploadUrl"], data=data, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_s3_refuses_an_upload_with_another_content_type_than_signed(local_url: str) -> None:
    status, _, upload = call(local_url, "POST", "/transcriptions/upload-url", _upload_request("wav", 4))
    assert status == 201, upload
    assert _send_upload(upload, b"RIFF", content_type="text/plain") == 403


def test_the_stream_url_is_the_local_streaming_emulator(local_url: str) -> None:
    status, _, body = call(local_url, "GET", "/transcriptions/stream-url")
    assert status == 200, body
    assert body["url"].startswith("ws://127.0.0.1:") and "/stream-transcription-websocket?" in body["url"]
    assert "X-Amz-Signature=" in body["url"] and "media-encoding=pcm" in body["url"]
    from websockets.sync.client import connect

    from tests.test_transcribe_streaming import audio_event, read_message

    pcm = audio.resample(voices.synthesize(SENTENCES[0], voices.VOICES["Joanna"]), voices.ESPEAK_RATE, 16000)
    finals = []
    with connect(body["url"]) as ws:
        for start in range(0, len(pcm), 3200):
            ws.send(audio_event(pcm[start:start + 3200]))
        ws.send(audio_event(b""))
        while True:
            try:
                headers, payload = read_message(ws.recv(timeout=120))
            except Exception:  # the server closes the stream after the last result
                break
            assert headers[":message-type"] == "event", payload
            result = json.loads(payload)["Transcript"]["Results"][0]
            if not result["IsPartial"]:
                finals.append(result["Alternatives"][0]["Transcript"])
    assert word_error_rate(SENTENCES[0], " ".join(finals)) <= WER_BOUND, finals
