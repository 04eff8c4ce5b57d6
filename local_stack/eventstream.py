"""AWS event stream encoding (``application/vnd.amazon.eventstream``), as Transcribe streaming uses it.

A message is

    total length (4 bytes, big-endian) | headers length (4) | prelude CRC32 (4)
    headers | payload | message CRC32 (4)

where the prelude CRC covers the first 8 bytes and the message CRC everything before it. A header is
its name's length (1 byte), the name, a type byte and the value; strings (type 7) and byte arrays
(type 6) carry a 2-byte length. All integers are big-endian; the CRC is CRC32 (zlib's).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PRELUDE = 12
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_HEADERS_BYTES = 128 * 1024
_STRING, _BYTES = 7, 6


class EventStreamError(ValueError):
    """The bytes are not one well-formed event stream message."""


@dataclass(frozen=True)
class Message:
    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", ""))

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type", ""))


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_headers(headers: dict[str, Any]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name
        if isinstance(value, bool):
            out += struct.pack(">B", 0 if value else 1)
        elif isinstance(value, bytes):
            out += struct.pack(">BH", _BYTES, len(value)) + value
        else:
            raw = str(value).encode()
            out += struct.pack(">BH", _STRING, len(raw)) + raw
    return bytes(out)


def encode(headers: dict[str, Any], payload: bytes = b"") -> bytes:
    """One message (string, bytes and boolean header values)."""
    raw_headers = encode_headers(headers)
    total = PRELUDE + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", _crc(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", _crc(body))


def _decode_headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    i = 0
    try:
        while i < len(data):
            size = data[i]
            name = data[i + 1:i + 1 + size].decode()
            i += 1 + size
            kind = data[i]
            i += 1
            value: Any
            if kind in (0, 1):
                value = kind == 0
            elif kind == 2:
                value, i = struct.unpack_from(">b", data, i)[0], i + 1
            elif kind == 3:
                value, i = struct.unpack_from(">h", data, i)[0], i + 2
            elif kind == 4:
                value, i = struct.unpack_from(">i", data, i)[0], i + 4
            elif kind == 5:
                value, i = struct.unpack_from(">q", data, i)[0], i + 8
            elif kind in (_BYTES, _STRING):
                length = struct.unpack_from(">H", data, i)[0]
                raw = data[i + 2:i + 2 + length]
                if len(raw) != length:
                    raise EventStreamError("A header value is cut short.")
                value = raw.decode() if kind == _STRING else bytes(raw)
                i += 2 + length
            elif kind == 8:
                millis = struct.unpack_from(">q", data, i)[0]
                value, i = datetime.fromtimestamp(millis / 1000, tz=UTC), i + 8
            elif kind == 9:
                value, i = uuid.UUID(bytes=bytes(data[i:i + 16])), i + 16
            else:
                raise EventStreamError(f"Unknown header value type {kind}.")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"The headers are malformed: {exc}") from exc
    return headers


def decode(data: bytes) -> Message:
    """One whole message (a WebSocket binary frame carries exactly one)."""
    if len(data) < PRELUDE + 4:
        raise EventStreamError(f"A message is at least {PRELUDE + 4} bytes; this one is {len(data)}.")
    total, headers_length, prelude_crc = struct.unpack_from(">III", data, 0)
    if _crc(data[:8]) != prelude_crc:
        raise EventStreamError("The prelude checksum does not match.")
    if total != len(data):
        raise EventStreamError(f"The prelude says {total} bytes; the frame has {len(data)}.")
    if total > MAX_MESSAGE_BYTES or headers_length > MAX_HEADERS_BYTES or PRELUDE + headers_length + 4 > total:
        raise EventStreamError("The message's lengths are out of bounds.")
    if _crc(data[:-4]) != struct.unpack_from(">I", data, total - 4)[0]:
        raise EventStreamError("The message checksum does not match.")
    headers = _decode_headers(data[PRELUDE:PRELUDE + headers_length])
    return Message(headers=headers, payload=bytes(data[PRELUDE + headers_length:total - 4]))


def event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    return encode({":message-type": "event", ":event-type": event_type, ":content-type": content_type}, payload)


def exception(exception_type: str, message: str) -> bytes:
    import json

    return encode({":message-type": "exception", ":exception-type": exception_type,
                   ":content-type": "application/json"}, json.dumps({"Message": message}).encode())
