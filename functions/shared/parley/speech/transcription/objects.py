"""Where a transcription's files live in the audio bucket, and its Transcribe job's name.

``<owner>`` in object keys is the owner id with ``#`` replaced by ``/`` (``DEVICE#abc`` ->
``DEVICE/abc``): only characters that need no escaping anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def owner_path(owner: str) -> str:
    return owner.replace("#", "/", 1)


def audio_key(owner: str, transcription_id: str, fmt: str) -> str:
    return f"audio/{owner_path(owner)}/{transcription_id}.{fmt}"


def upload_key(owner: str, transcription_id: str, fmt: str) -> str:
    return f"uploads/{owner_path(owner)}/{transcription_id}.{fmt}"


def transcript_key(owner: str, transcription_id: str) -> str:
    return f"transcripts/{owner_path(owner)}/{transcription_id}.json"


_KEY = re.compile(r"^(?P<area>audio|uploads)/(?P<kind>DEVICE|USER)/(?P<oid>[A-Za-z0-9._-]{1,128})/"
                  r"(?P<tid>[0-9A-HJKMNP-TV-Z]{26})\.(?P<fmt>webm|ogg|wav|mp3|m4a)$")


@dataclass(frozen=True)
class ObjectKey:
    area: str
    owner: str
    transcription_id: str
    fmt: str


def parse_key(key: str) -> ObjectKey | None:
    found = _KEY.match(key)
    if not found:
        return None
    return ObjectKey(found["area"], f"{found['kind']}#{found['oid']}", found["tid"], found["fmt"])


def job_name(stage: str, transcription_id: str) -> str:
    return f"parley-{stage}-{transcription_id}"
