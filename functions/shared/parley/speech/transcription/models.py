"""The transcription API's request and reply models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from parley.core.models import ApiModel
from parley.speech.transcription.audio import MAX_UPLOAD_BYTES, AudioFormat, TranscribeLanguage, TranscriptionStatus


class CreateTranscription(ApiModel):
    audio: str = Field(min_length=1, description="The recording, base64 (a data: URL prefix is accepted)")
    format: AudioFormat | None = Field(None, description="Optional; checked against the audio's content")
    session_id: str | None = Field(None, max_length=64, description="Save the transcript under this session")
    language: TranscribeLanguage = "en-US"


class UploadUrlRequest(ApiModel):
    format: AudioFormat
    session_id: str | None = Field(None, max_length=64)
    language: TranscribeLanguage = "en-US"
    size_bytes: int = Field(ge=1, le=MAX_UPLOAD_BYTES, description=(
        "The recording's size in bytes (a client has the recording before it asks where to put it): the upload "
        "is signed for at most this many, and the monthly quota reserves what a recording of this size can cost."))


class WordOut(ApiModel):
    text: str
    start: float
    end: float
    confidence: float


class Reason(ApiModel):
    code: str
    message: str


class TranscriptionOut(ApiModel):
    transcription_id: str
    status: TranscriptionStatus
    language: str
    session_id: str | None = None
    created_at: str
    updated_at: str
    text: str | None = None
    words: list[WordOut] | None = None
    duration_seconds: float | None = None
    reason: Reason | None = Field(None, description="Why it failed, when status is failed")


class UploadUrlOut(ApiModel):
    """An S3 presigned POST: send ``multipart/form-data`` to ``uploadUrl`` with every entry of
    ``fields`` as a form field, in that order, then the recording as the LAST field, named
    ``fileField``. S3 refuses a file outside ``minBytes``–``maxBytes`` or of another content type."""

    transcription_id: str
    upload_url: str = Field(description="POST the form here")
    method: Literal["POST"] = "POST"
    fields: dict[str, str] = Field(description="Form fields to send as they are, before the file")
    file_field: Literal["file"] = Field("file", description="The form field that carries the recording")
    content_type: str = Field(description="The Content-Type the policy requires (also in fields)")
    min_bytes: int = 1
    max_bytes: int = Field(description="The largest recording the policy admits")
    expires_at: str = Field(description="After this the policy is refused; one upload per transcription")


class StreamUrlOut(ApiModel):
    url: str
    expires_at: str = Field(description="Connect before this; the stream itself may then run on")
    language_code: str = "en-US"
    media_encoding: str = "pcm"
    sample_rate: int = 16000
    metered_seconds: int | None = Field(None, description=(
        "Seconds of streaming transcription this URL is counted as against the monthly quota (what it grants: "
        "how long the client really streams is not known to Parley)"))


def transcription_out(item: dict[str, Any]) -> TranscriptionOut:
    words = item.get("words")
    return TranscriptionOut(
        transcription_id=item["transcriptionId"], status=item["status"], language=item["language"],
        session_id=item.get("sessionId"), created_at=item["createdAt"], updated_at=item["updatedAt"],
        text=item.get("text"), duration_seconds=float(item["durationSeconds"]) if "durationSeconds" in item else None,
        words=[WordOut(text=w["text"], start=float(w["start"]), end=float(w["end"]),
                       confidence=float(w["confidence"])) for w in words] if words is not None else None,
        reason=Reason(**item["reason"]) if item.get("reason") else None,
    )
