"""The streaming Transcribe emulator, spoken to by a client written here as one is written for AWS:
it encodes the event stream frames itself (prelude, headers, CRCs), signs the URL with SigV4 (through
``parley.speech.transcription.stream_url``, as the API does) and sends 16 kHz PCM in 100 ms chunks."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
from botocore.credentials import Credentials
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from local_stack import audio, voices
from local_stack.transcribe_streaming import StreamingTranscribe
from parley.speech.transcription.stream_url import stream_url
from tests.speech_samples import SENTENCES, word_error_rate

CREDENTIALS = Credentials("stream-test-key", "stream-test-secret")
CHUNK = 3200  # 100 ms of 16 kHz 16-bit mono


# -- the client's own event stream encoding -----------------------------------------------------
def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    raw = b"".join(struct.pack(">B", len(k)) + k.encode() + struct.pack(">BH", 7, len(v.encode())) + v.encode()
                   for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(raw) + len(payload) + 4, len(raw))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw + payload
    return message + struct.pack(">I", zlib.crc32(message))


def audio_event(pcm: bytes) -> bytes:
    return encode_message({":content-type": "application/octet-stream", ":event-type": "AudioEvent",
                           ":message-type": "event"}, pcm)


def read_message(frame: bytes | str) -> tuple[dict[str, str], bytes]:
    assert isinstance(frame, bytes)
    total, header_length, prelude_crc = struct.unpack_from(">III", frame)
    assert total == len(frame) and zlib.crc32(frame[:8]) == prelude_crc
    assert zlib.crc32(frame[:-4]) == struct.unpack_from(">I", frame, total - 4)[0]
    headers, i = {}, 12
    while i < 12 + header_length:
        size = frame[i]
        name = frame[i + 1:i + 1 + size].decode()
        kind, length = frame[i + 1 + size], struct.unpack_from(">H", frame, i + 2 + size)[0]
        assert kind == 7
        headers[name] = frame[i + 4 + size:i + 4 + size + length].decode()
        i += 4 + size + length
    return headers, frame[12 + header_length:total - 4]


# -- the emulator, on a free port -----------------------------------------------------------------
@pytest.fixture(scope="module")
def emulator() -> Iterator[StreamingTranscribe]:
    server = StreamingTranscribe(secrets={CREDENTIALS.access_key: CREDENTIALS.secret_key}, region="us-east-1",
                                 idle_seconds=2).start()
    yield server
    server.stop()


def signed_url(emulator: StreamingTranscribe, **options: Any) -> str:
    return stream_url(CREDENTIALS, "us-east-1", endpoint=emulator.url, **options).url


def events(ws: Any) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Every message until the server closes the stream."""
    found = []
    while True:
        try:
            headers, payload = read_message(ws.recv(timeout=120))
        except ConnectionClosed:
            return found
        found.append((headers, json.loads(payload)))


def speak_pcm(text: str) -> bytes:
    return audio.resample(voices.synthesize(text, voices.VOICES["Joanna"]), voices.ESPEAK_RATE, 16000)


def test_pcm_in_100_ms_chunks_gets_partials_then_a_final_within_the_error_bound(emulator: StreamingTranscribe) -> None:
    spoken = SENTENCES[0]
    pcm = speak_pcm(spoken)
    with connect(signed_url(emulator)) as ws:
        for start in range(0, len(pcm), CHUNK):
            ws.send(audio_event(pcm[start:start + CHUNK]))
        ws.send(audio_event(b""))  # the end of the stream
        received = events(ws)
    assert received and all(h[":message-type"] == "event" and h[":event-type"] == "TranscriptEvent"
                            for h, _ in received)
    results = [body["Transcript"]["Results"][0] for _, body in received]
    partials = [r for r in results if r["IsPartial"]]
    finals = [r for r in results if not r["IsPartial"]]
    assert partials and finals
    assert results.index(partials[0]) < results.index(finals[0])  # partial results come first
    assert {r["ResultId"] for r in partials} <= {r["ResultId"] for r in finals}  # the same segment's id
    final_text = " ".join(r["Alternatives"][0]["Transcript"] for r in finals)
    assert word_error_rate(spoken, final_text) <= 0.35, final_text
    seconds = len(pcm) / 32000
    for result in finals:
        words = [i for i in result["Alternatives"][0]["Items"] if i["Type"] == "pronunciation"]
        assert all(0 <= i["StartTime"] < i["EndTime"] <= seconds + 0.05 and 0 <= i["Confidence"] <= 1 for i in words)


def test_a_url_for_another_media_encoding_gets_transcribes_bad_request(emulator: StreamingTranscribe) -> None:
    url = signed_url(emulator).replace("media-encoding=pcm", "media-encoding=mp3")  # not signed for this
    with connect(url) as ws:
        (headers, body), = events(ws)
    assert headers[":message-type"] == "exception" and headers[":exception-type"] == "BadRequestException"
    assert "signature" in body["Message"]


@pytest.mark.parametrize(("encoding", "expected"), [("mp3", "mediaEncoding"), ("flac", "pcm only")])
def test_a_wrong_media_encoding_gets_transcribes_bad_request(emulator: StreamingTranscribe, encoding: str,
                                                           expected: str) -> None:
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="GET", url=f"https://127.0.0.1:{emulator.port}/stream-transcription-websocket"
                                           f"?language-code=en-US&media-encoding={encoding}&sample-rate=16000")
    SigV4QueryAuth(CREDENTIALS, "transcribe", "us-east-1", expires=60).add_auth(request)
    with connect("ws://" + str(request.url).split("://", 1)[1]) as ws:
        (headers, body), = events(ws)
    assert headers[":exception-type"] == "BadRequestException" and expected in body["Message"], body


@pytest.mark.parametrize("mangle", [
    lambda url: url.split("&X-Amz-Signature=")[0],  # unsigned
    lambda url: url.replace("X-Amz-Expires=60", "X-Amz-Expires=6000"),  # over Transcribe's 300 s
    lambda url: url.replace("X-Amz-Date=", "X-Amz-Date=2020"),  # not a date
])
def test_a_malformed_url_gets_transcribes_bad_request(emulator: StreamingTranscribe, mangle: Any) -> None:
    with connect(mangle(signed_url(emulator))) as ws:
        (headers, body), = events(ws)
    assert headers[":message-type"] == "exception" and headers[":exception-type"] == "BadRequestException"
    assert body["Message"]


def test_an_expired_url_is_refused(emulator: StreamingTranscribe) -> None:
    from datetime import datetime, timedelta
    from unittest import mock

    yesterday = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    with mock.patch("botocore.auth.get_current_datetime", return_value=yesterday):
        url = signed_url(emulator)
    with connect(url) as ws:
        (headers, body), = events(ws)
    assert headers[":exception-type"] == "BadRequestException" and "expired" in body["Message"]


def test_a_frame_with_a_bad_checksum_and_silence_too_long_are_refused(emulator: StreamingTranscribe) -> None:
    frame = bytearray(audio_event(b"\x00\x01" * 100))
    frame[-1] ^= 0xFF
    with connect(signed_url(emulator)) as ws:
        ws.send(bytes(frame))
        (headers, body), = events(ws)
    assert headers[":exception-type"] == "BadRequestException" and "checksum" in body["Message"]
    with connect(signed_url(emulator)) as ws:  # nothing sent: the emulator's idle limit is 2 s here
        (headers, body), = events(ws)
    assert "no new audio was received" in body["Message"]
