"""Recordings: the formats Transcribe takes, the size limits, and a recording's checks (its real
format from its first bytes, base64 decoding, the most seconds its bytes can hold).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import StringConstraints

from parley.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

AudioFormat = Literal["webm", "ogg", "wav", "mp3", "m4a"]
TranscriptionStatus = Literal["queued", "running", "completed", "failed"]
TranscribeLanguage = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}-[A-Z]{2}$")]

# Our format name -> (Transcribe MediaFormat, Content-Type of the object).
FORMATS: dict[str, tuple[str, str]] = {
    "webm": ("webm", "audio/webm"), "ogg": ("ogg", "audio/ogg"), "wav": ("wav", "audio/wav"),
    "mp3": ("mp3", "audio/mpeg"), "m4a": ("m4a", "audio/mp4"),
}
# POST /transcriptions carries the audio in a Lambda request (6 MB synchronous payload limit,
# base64 adds a third): 4 MB of audio, about 16 minutes of browser Opus/WebM.
MAX_INLINE_AUDIO_BYTES = 4_000_000
# A presigned upload may be larger (Transcribe itself accepts up to 2 GB / 4 h).
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
# Transcribe bills by the second of audio, which is known only once the job has run. A recording's
# reservation is the most it can last: its bytes at the lowest bitrate its format is made at
# (e.g. 6 kbit/s Opus), and never more than Transcribe's own 4-hour limit for one job.
MIN_BYTES_PER_SECOND: dict[str, int] = {"webm": 750, "ogg": 750, "mp3": 1000, "m4a": 1000, "wav": 8000}
MAX_AUDIO_SECONDS = 4 * 60 * 60
# A recording's reservation stays open until its workflow has counted it; one nobody settles (an
# upload URL never used) is released after this long (the workflow's timeout).
TRANSCRIPTION_SETTLE_SECONDS = 2 * 60 * 60
# A transcript item must fit DynamoDB's 400 KB item limit with room for the rest.
MAX_TRANSCRIPT_ITEM_BYTES = 350_000
_DATA_URL = re.compile(r"^data:[\w/+.-]+(;[\w=-]+)*;base64,")


class InvalidAudio(BadRequest):
    code = "INVALID_AUDIO"


def detect_format(head: bytes) -> str | None:
    """The audio container from its first bytes (magic numbers), or None."""
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM (Matroska) - what browsers' MediaRecorder makes
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":  # ISO base media: M4A/MP4 audio (Safari's MediaRecorder)
        return "m4a"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0):
        return "mp3"
    return None


def decode_audio(data: str, declared: str | None) -> tuple[bytes, str]:
    """Base64 (optionally a data: URL) -> (bytes, format). Raises the API's 400/413/415 errors."""
    payload = _DATA_URL.sub("", data.strip(), count=1)
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidAudio("`audio` is not valid base64.", details=[{"field": "body.audio"}]) from exc
    if not audio:
        raise InvalidAudio("`audio` is empty.", details=[{"field": "body.audio"}])
    if len(audio) > MAX_INLINE_AUDIO_BYTES:
        raise PayloadTooLarge(
            f"The audio is {len(audio)} bytes; at most {MAX_INLINE_AUDIO_BYTES} can be sent inline. "
            "Use POST /transcriptions/upload-url for longer recordings.")
    found = detect_format(audio[:64])
    if found is None:
        raise UnsupportedMediaType("The audio is not WebM, Ogg, WAV, MP3 or M4A (checked by its content).",
                                   details=[{"field": "body.audio", "accepted": sorted(FORMATS)}])
    if declared and declared != found:
        raise UnsupportedMediaType(f"`format` says {declared} but the audio is {found}.",
                                   details=[{"field": "body.format", "detected": found}])
    return audio, found


def audio_seconds_bound(size_bytes: int, fmt: str) -> float:
    """The longest a recording of ``size_bytes`` in ``fmt`` can last (what its transcription reserves)."""
    return float(min(MAX_AUDIO_SECONDS, max(1, -(-size_bytes // MIN_BYTES_PER_SECOND[fmt]))))
