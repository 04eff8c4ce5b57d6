"""Identifiers and timestamps.

Session and message ids are ULIDs: 48 bits of milliseconds then 80 random bits, in Crockford
base32. They sort by creation time, and a session's start time can be read back from its id, so
the session's sort key (which begins with that time, as the seed lays it out) is derived from
the id alone: one strongly consistent GetItem, no index lookup.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_ULID_RE = re.compile(ULID_PATTERN)


def new_ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_ulid(value: str) -> bool:
    return bool(_ULID_RE.match(value))


def ulid_millis(ulid: str) -> int:
    value = 0
    for ch in ulid[:10]:
        value = value * 32 + _CROCKFORD.index(ch)
    return value


def iso_millis(ms: int) -> str:
    """``2026-11-22T01:54:30.123Z`` — fixed width, so it sorts as text."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_micros(dt: datetime) -> str:
    """``2026-11-22T01:54:30.123456Z`` — fixed width, sortable."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def utcnow() -> datetime:
    return datetime.now(tz=UTC)
