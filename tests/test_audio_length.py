"""parley.speech.audio_length: a recording's length from its container's first and last bytes.

The files are built here to each container's published layout (the WAV through the standard
library's writer), with a known length; the reader gets only a head and a tail window, as the
workflow reads them from S3.
"""

from __future__ import annotations

import io
import struct
import wave

import pytest

from parley.speech.audio_length import WINDOW, audio_seconds


def windows(data: bytes, fmt: str, window: int = WINDOW) -> float | None:
    return audio_seconds(data[:window], data[-window:], len(data), fmt)


# -- WAV ------------------------------------------------------------------------------------------
def wav(seconds: float, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def test_wav_length_from_its_header() -> None:
    assert windows(wav(2.5), "wav") == 2.5
    assert windows(wav(30.0, rate=8000), "wav", window=4096) == 30.0  # only the head says; the tail is samples


def test_a_streamed_wav_without_a_data_size_counts_the_rest_of_the_file() -> None:
    data = bytearray(wav(1.0))
    at = data.find(b"data")
    data[at + 4:at + 8] = b"\xff\xff\xff\xff"
    assert windows(bytes(data), "wav") == 1.0


# -- Ogg (Opus, Vorbis) ---------------------------------------------------------------------------
def ogg_page(granule: int, payload: bytes, sequence: int) -> bytes:
    header = b"OggS" + bytes([0, 0]) + struct.pack("<qIII", granule, 1, sequence, 0)
    return header + bytes([1, len(payload)]) + payload


def test_ogg_opus_length_from_the_last_granule_less_the_pre_skip() -> None:
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    pages = ogg_page(0, head, 0) + ogg_page(0, b"OpusTags" + bytes(8), 1)
    pages += b"".join(ogg_page(960 * 50 * n, bytes(100), 1 + n) for n in range(1, 40))  # 1 s per page
    assert windows(pages + ogg_page(-1, b"", 99), "ogg") == round((960 * 50 * 39 - 312) / 48000, 3)


def test_ogg_vorbis_length_from_its_sample_rate() -> None:
    ident = b"\x01vorbis" + struct.pack("<IBI", 0, 1, 44100) + bytes(13)
    assert windows(ogg_page(0, ident, 0) + ogg_page(44100 * 3, bytes(50), 1), "ogg") == 3.0


# -- WebM / Matroska ------------------------------------------------------------------------------
def element(element_id: int, body: bytes, *, unknown: bool = False) -> bytes:
    ident = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown else (0x10000000 | len(body)).to_bytes(4, "big")
    return ident + size + body


def block(track: int, relative_ms: int) -> bytes:
    return element(0xA3, bytes([0x80 | track]) + struct.pack(">hB", relative_ms, 0x80) + bytes(40))


EBML = element(0x1A45DFA3, element(0x4282, b"webm"))


def test_webm_length_from_the_segment_duration() -> None:
    info = element(0x1549A966, element(0x2AD7B1, (1_000_000).to_bytes(3, "big")) + element(0x4489,
                                                                                          struct.pack(">d", 4250.0)))
    assert windows(EBML + element(0x18538067, info + element(0x1F43B675, element(0xE7, b"\x00"))), "webm") == 4.25


def test_a_mediarecorder_webm_without_duration_uses_its_last_cluster() -> None:
    """Browsers' MediaRecorder streams: no Duration, a Segment of unknown size, clusters every few seconds."""
    info = element(0x1549A966, element(0x2AD7B1, (1_000_000).to_bytes(3, "big")))
    clusters = b"".join(element(0x1F43B675, element(0xE7, (5000 * n).to_bytes(3, "big"))
                                + b"".join(block(1, 20 * k) for k in range(250)), unknown=False)
                        for n in range(40))  # 40 clusters of 5 s, 20 ms blocks
    data = EBML + element(0x18538067, info + clusters, unknown=True)
    assert len(data) > 2 * 16384
    assert windows(data, "webm", window=16384) == 5000 * 39 / 1000 + 4.98


# -- MP4 / M4A ------------------------------------------------------------------------------------
def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def mvhd(timescale: int, duration: int) -> bytes:
    return box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, timescale, duration) + bytes(80))


@pytest.mark.parametrize("moov_first", [True, False], ids=["faststart", "moov-at-the-end"])
def test_m4a_length_from_mvhd_at_either_end(moov_first: bool) -> None:
    moov, mdat = box(b"moov", mvhd(44100, 44100 * 7)), box(b"mdat", bytes(3 * 16384))
    body = moov + mdat if moov_first else mdat + moov
    assert windows(box(b"ftyp", b"M4A \x00\x00\x00\x00") + body, "m4a", window=16384) == 7.0


# -- MP3 ------------------------------------------------------------------------------------------
FRAME_HEADER = bytes([0xFF, 0xFB, 0x90, 0x44])  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz, joint stereo


def test_mp3_cbr_length_from_its_bit_rate() -> None:
    frame = FRAME_HEADER + bytes(413)  # 417 bytes: one 26 ms frame at 128 kbit/s
    data = b"ID3\x03\x00\x00\x00\x00\x00\x0a" + bytes(10) + frame * 1000
    assert windows(data, "mp3") == pytest.approx(1000 * 417 * 8 / 128000, abs=0.01)


def test_mp3_vbr_length_from_its_xing_frame_count() -> None:
    xing = FRAME_HEADER + bytes(32) + b"Xing" + struct.pack(">II", 1, 383) + bytes(300)
    assert windows(xing + FRAME_HEADER + bytes(2000), "mp3") == round(383 * 1152 / 44100, 3)


# -- what no container says -----------------------------------------------------------------------
@pytest.mark.parametrize(("data", "fmt"), [
    (b"\x1a\x45\xdf\xa3" + bytes(200), "webm"),  # a header and nothing else
    (b"OggS" + bytes(100), "ogg"),
    (b"not audio at all", "wav"),
    (b"", "mp3"),
    (wav(1.0), "flac"),
])
def test_unknown_lengths_are_none(data: bytes, fmt: str) -> None:
    assert windows(data, fmt) is None
