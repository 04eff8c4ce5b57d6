"""How long a recording is, from its container, reading only its first and last bytes.

Transcribe bills a batch job by the length of its audio (per second, with a minimum per job),
whether or not a usable transcript comes out. When the transcript is missing or unreadable the
recording itself is the only measure left, and a transcript's last word ends before the audio does
(trailing silence is billed too): so the transcription workflow meters ``max(last word, audio
length)``, and this module gives the audio length.

``audio_seconds(head, tail, size, fmt)`` takes the first and last ``WINDOW`` bytes of the object (two
ranged GETs, whatever the recording's size) and the object's size. It answers ``None`` when the
container does not say (a stream without duration or timestamps in those bytes, or bytes that are
not that container): callers then fall back to what else they know. Formats, as browsers and
phones record them:

- WAV: ``fmt `` byte rate and ``data`` size (exact);
- Ogg (Opus, Vorbis): the granule position of the last page in the tail (exact to a packet);
- WebM/Matroska: ``Segment/Info/Duration`` when the writer set it, else the last cluster's
  timecode plus its last block's (MediaRecorder writes no duration);
- MP4/M4A: ``moov/mvhd`` duration over its timescale (``moov`` at the start or the end);
- MP3: the Xing/Info or VBRI frame count, else the bit rate of the first frame over the size.
"""

from __future__ import annotations

import struct

WINDOW = 256 * 1024  # bytes read at each end of the object


def audio_seconds(head: bytes, tail: bytes, size: int, fmt: str) -> float | None:
    """The recording's length in seconds, or None when its container does not say."""
    reader = _READERS.get(fmt)
    if reader is None or not head:
        return None
    try:
        seconds = reader(head, tail or head, size)
    except (struct.error, IndexError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if seconds is None or not 0 < seconds < 100 * 3600:  # not a length a recording has
        return None
    return round(seconds, 3)


# -- WAV -----------------------------------------------------------------------------------------
def _wav(head: bytes, _tail: bytes, size: int) -> float | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, 0
    while offset + 8 <= len(head):
        chunk, length = head[offset:offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        if chunk == b"fmt ":
            byte_rate = struct.unpack_from("<I", head, offset + 16)[0]
        elif chunk == b"data" and byte_rate:
            # A streaming writer leaves the size at 0 or 0xFFFFFFFF: the rest of the file is data.
            data = length if 0 < length < 0xFFFFFFFF else size - offset - 8
            return min(data, size - offset - 8) / byte_rate
        offset += 8 + length + (length & 1)
    return None


# -- Ogg -----------------------------------------------------------------------------------------
def _ogg(head: bytes, tail: bytes, _size: int) -> float | None:
    if not head.startswith(b"OggS"):
        return None
    first = head[27 + head[26]:]  # the first page's first packet: the codec's identification header
    if first.startswith(b"OpusHead"):
        pre_skip, rate = struct.unpack_from("<H", first, 10)[0], 48000  # Opus granules count 48 kHz samples
    elif first.startswith(b"\x01vorbis"):
        pre_skip, rate = 0, struct.unpack_from("<I", first, 12)[0]
    else:
        return None
    at = tail.rfind(b"OggS")
    while at >= 0:
        granule = struct.unpack_from("<q", tail, at + 6)[0]
        if granule > 0:
            return (granule - pre_skip) / rate
        at = tail.rfind(b"OggS", 0, at)
    return None


# -- WebM / Matroska -----------------------------------------------------------------------------
_SEGMENT, _INFO, _CLUSTER = 0x18538067, 0x1549A966, 0x1F43B675
_TIMECODE_SCALE, _DURATION, _TIMECODE, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK = (
    0x2AD7B1, 0x4489, 0xE7, 0xA3, 0xA0, 0xA1)
_UNKNOWN = -1


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``at``: (value, length). Unknown sizes give -1."""
    first = data[at]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("not an EBML number")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[at + 1:at + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return _UNKNOWN, length
    return value, length


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(id, data start, data end) of the elements between ``start`` and ``end``, as far as they go."""
    found, at = [], start
    while at < end:
        try:
            element, id_length = _vint(data, at, keep_marker=True)
            size, size_length = _vint(data, at + id_length, keep_marker=False)
        except (IndexError, ValueError):
            break
        body = at + id_length + size_length
        stop = end if size == _UNKNOWN else min(body + size, end)
        found.append((element, body, stop))
        if size == _UNKNOWN:
            break  # a master element of unknown size: its children follow directly
        at = body + size
    return found


def _uint(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big")


def _webm(head: bytes, tail: bytes, _size: int) -> float | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    scale = 1_000_000
    top = _elements(head, 0, len(head))
    segment = next(((s, e) for i, s, e in top if i == _SEGMENT), None)
    if segment is None:
        return None
    for element, start, end in _elements(head, *segment):
        if element == _INFO:
            duration = None
            for child, c_start, c_end in _elements(head, start, end):
                if child == _TIMECODE_SCALE:
                    scale = _uint(head, c_start, c_end)
                elif child == _DURATION:
                    duration = struct.unpack(">f" if c_end - c_start == 4 else ">d", head[c_start:c_end])[0]
            if duration:
                return duration * scale / 1e9
    # No duration: the last cluster's timecode plus its last block's relative timecode.
    at = tail.rfind(b"\x1f\x43\xb6\x75")
    while at >= 0:
        latest = _last_block_time(tail, at)
        if latest is not None:
            return latest * scale / 1e9
        at = tail.rfind(b"\x1f\x43\xb6\x75", 0, at)
    return None


def _last_block_time(data: bytes, at: int) -> int | None:
    cluster = _elements(data, at, len(data))
    if not cluster or cluster[0][0] != _CLUSTER:
        return None
    base, latest = None, None
    for element, start, end in _elements(data, cluster[0][1], cluster[0][2]):
        if element == _TIMECODE:
            base = _uint(data, start, end)
        elif element in (_SIMPLE_BLOCK, _BLOCK_GROUP) and base is not None:
            block = start
            if element == _BLOCK_GROUP:
                inner = next(((s, e) for i, s, e in _elements(data, start, end) if i == _BLOCK), None)
                if inner is None:
                    continue
                block = inner[0]
            _track, track_length = _vint(data, block, keep_marker=False)
            relative = struct.unpack_from(">h", data, block + track_length)[0]
            latest = base + relative
    return latest


# -- MP4 / M4A -----------------------------------------------------------------------------------
def _mvhd(data: bytes) -> float | None:
    at = data.find(b"mvhd")
    if at < 4:
        return None
    version = data[at + 4]
    if version == 1:
        timescale, duration = struct.unpack_from(">IQ", data, at + 4 + 4 + 16)
    else:
        timescale, duration = struct.unpack_from(">II", data, at + 4 + 4 + 8)
    return duration / timescale if timescale else None


def _m4a(head: bytes, tail: bytes, _size: int) -> float | None:
    if head[4:8] != b"ftyp":
        return None
    return _mvhd(head) or _mvhd(tail)


# -- MP3 -----------------------------------------------------------------------------------------
_BITRATES = {  # kbit/s by (MPEG version 1?, layer III) index
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0),
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3(head: bytes, _tail: bytes, size: int) -> float | None:
    start = 0
    if head.startswith(b"ID3"):
        tag = head[6:10]
        start = 10 + ((tag[0] << 21) | (tag[1] << 14) | (tag[2] << 7) | tag[3])
    at = start
    while at + 4 <= len(head) and not (head[at] == 0xFF and head[at + 1] & 0xE0 == 0xE0):
        at += 1
    if at + 4 > len(head):
        return None
    version = (head[at + 1] >> 3) & 0x3
    bitrate_index, rate_index = head[at + 2] >> 4, (head[at + 2] >> 2) & 0x3
    if version == 1 or rate_index == 3:
        return None
    mpeg1 = version == 3
    rate = _RATES[version][rate_index]
    samples = 1152 if mpeg1 else 576
    mono = (head[at + 3] >> 6) == 3
    side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    frames = None
    xing = head[at + 4 + side:at + 4 + side + 4]
    if xing in (b"Xing", b"Info"):
        flags = struct.unpack_from(">I", head, at + 4 + side + 4)[0]
        if flags & 1:
            frames = struct.unpack_from(">I", head, at + 4 + side + 8)[0]
    elif head[at + 36:at + 40] == b"VBRI":
        frames = struct.unpack_from(">I", head, at + 36 + 14)[0]
    if frames:
        return frames * samples / rate
    bitrate = _BITRATES[mpeg1][bitrate_index] * 1000
    return (size - at) * 8 / bitrate if bitrate else None


_READERS = {"wav": _wav, "ogg": _ogg, "webm": _webm, "m4a": _m4a, "mp3": _mp3}
