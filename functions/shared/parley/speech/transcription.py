"""Batch speech-to-text (seed 000's ``stt``) as a workflow, and the streaming URL.

Two ways in, one workflow (statemachines/transcription.asl.json):

- ``POST /transcriptions`` (audio base64 in JSON): the API checks the audio, stores it under
  ``audio/<owner>/…``, saves the transcription (status ``queued``) and starts the execution named
  after the transcription id (a repeated start is refused by Step Functions, not run twice).
- ``POST /transcriptions/upload-url``: the API saves the transcription (``queued``) and returns a
  presigned PUT for ``uploads/<owner>/<id>.<format>``; the object's arrival (S3 → EventBridge rule)
  starts the same state machine with the S3 event, and ``prepare`` checks that upload.

The workflow's Lambda tasks are ``prepare`` (normalise the input, validate an upload, mark
``running``), ``collect`` (read Transcribe's output file, parse it, save it, publish usage) and
``record_failure`` (a reason a person can act on). Errors are raised as named exceptions so the
ASL Retry/Catch by name. ``<owner>`` in object keys is the owner id with ``#`` replaced by ``/``
(``DEVICE#abc`` → ``DEVICE/abc``): only characters that need no escaping anywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from parley.core.errors import BadRequest, NotFound, PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from parley.core.ids import is_ulid, iso_micros, new_ulid, parse_iso, utcnow
from parley.core.models import ApiModel
from parley.core.observability import logger, redact_owners
from parley.data import keys
from parley.data.store import Store, error_code
from parley.usage.events import UsageEvent
from parley.usage.pricing import DEFAULT_PRICES, PriceTable
from parley.usage.quota import Bound, QuotaGuard, Reservation, release

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


# -- named errors of the workflow's tasks (the ASL catches them by these names) -------------------
class UploadRejected(Exception):
    """The uploaded object is empty, too large or not audio in the declared format."""


class TranscriptionAlreadyStarted(Exception):
    """A second start for the same transcription (e.g. a repeated S3 event): nothing to do."""


class TranscriptionNotFound(Exception):
    """The workflow was started for a transcription that does not exist."""


class TranscriptMissing(Exception):
    """Transcribe reported COMPLETED but its output file is not where we asked it to be."""


class TranscriptMalformed(Exception):
    """The output file is not Transcribe's documented JSON."""


class TranscriptTooLarge(Exception):
    """The transcript does not fit one table item."""


class InvalidAudio(BadRequest):
    code = "INVALID_AUDIO"


# -- audio -----------------------------------------------------------------------------------------
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


# -- object keys -----------------------------------------------------------------------------------
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


# -- Transcribe's output file ---------------------------------------------------------------------
@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    text: str
    words: list[Word]
    language: str | None

    @property
    def duration_seconds(self) -> float:
        return max((w.end for w in self.words), default=0.0)


def parse_transcript(document: Any) -> Transcript:
    """Parse Transcribe's batch output (``results.transcripts`` and ``results.items``).

    Items of type ``pronunciation`` become words (the first alternative is Transcribe's best; times
    and confidences are strings in the file); ``punctuation`` items have no times and are attached
    to the previous word's text, so ``words`` joined by spaces reads like ``text``.
    """
    try:
        results = document["results"]
        items = results.get("items", [])
        words: list[Word] = []
        for item in items:
            best = item["alternatives"][0]
            content = str(best["content"])
            if item["type"] == "punctuation":
                if words:
                    last = words[-1]
                    words[-1] = Word(last.text + content, last.start, last.end, last.confidence)
                continue
            if item["type"] != "pronunciation":
                raise TranscriptMalformed(f"Unknown item type {item['type']!r}")
            words.append(Word(content, float(item["start_time"]), float(item["end_time"]),
                              float(best.get("confidence", 0) or 0)))
        text = " ".join(t["transcript"] for t in results.get("transcripts", []) if t.get("transcript")).strip()
        if not text:
            text = " ".join(w.text for w in words)
        language = results.get("language_code")
    except TranscriptMalformed:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise TranscriptMalformed(f"Not a Transcribe output file: {type(exc).__name__}: {exc}") from exc
    return Transcript(text=text, words=words, language=language)


# -- API models ------------------------------------------------------------------------------------
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


def _out(item: dict[str, Any]) -> TranscriptionOut:
    words = item.get("words")
    return TranscriptionOut(
        transcription_id=item["transcriptionId"], status=item["status"], language=item["language"],
        session_id=item.get("sessionId"), created_at=item["createdAt"], updated_at=item["updatedAt"],
        text=item.get("text"), duration_seconds=float(item["durationSeconds"]) if "durationSeconds" in item else None,
        words=[WordOut(text=w["text"], start=float(w["start"]), end=float(w["end"]),
                       confidence=float(w["confidence"])) for w in words] if words is not None else None,
        reason=Reason(**item["reason"]) if item.get("reason") else None,
    )


# -- the API side ----------------------------------------------------------------------------------
class Transcriptions:
    """The API side. With a quota guard, each recording reserves the most its transcription can
    cost before anything is stored or started (429 over quota); the workflow's usage event settles
    the reservation, and its failure path releases it."""

    def __init__(self, store: Store, s3: Any, sfn: Any, *, bucket: str, state_machine_arn: str,
                 retention_days: int, upload_url_seconds: int = 300, quota: QuotaGuard | None = None,
                 prices: PriceTable = DEFAULT_PRICES) -> None:
        self.store = store
        self.s3 = s3
        self.sfn = sfn
        self.bucket = bucket
        self.state_machine_arn = state_machine_arn
        self.retention = timedelta(days=retention_days)
        self.upload_url_seconds = upload_url_seconds
        self.quota = quota
        self.prices = prices

    def _reserve(self, owner: str, seconds: float) -> Reservation | None:
        if self.quota is None:
            return None
        cost = self.prices.cost(UsageEvent(owner=owner, product="tutor", engine="transcribe", model="standard",
                                           operation="stt", audio_seconds=seconds))
        return self.quota.reserve(owner, Bound(cost_usd=cost), operation="stt",
                                  settle_within=TRANSCRIPTION_SETTLE_SECONDS)

    def _release(self, reservation: Reservation | None) -> None:
        if self.quota is not None:
            self.quota.release(reservation)

    def _new_item(self, owner: str, *, source: str, fmt: str, key: str, session_id: str | None,
                  language: str, reservation: Reservation | None = None) -> dict[str, Any]:
        now = utcnow()
        transcription_id = key.rsplit("/", 1)[1].split(".")[0]
        item = {
            "PK": owner, "SK": keys.transcription_sk(transcription_id), "type": "TRANSCRIPTION",
            "transcriptionId": transcription_id, "status": "queued", "source": source, "format": fmt,
            "audioKey": key, "language": language, "createdAt": iso_micros(now), "updatedAt": iso_micros(now),
            "expiresAt": int((now + self.retention).timestamp()),
        }
        if session_id:
            item["sessionId"] = session_id
        if reservation is not None:
            item.update({"reservationId": reservation.id, "reservedCostUsd": Decimal(str(reservation.cost_usd))})
        return item

    def create(self, owner: str, request: CreateTranscription) -> TranscriptionOut:
        audio, fmt = decode_audio(request.audio, request.format)
        reservation = self._reserve(owner, audio_seconds_bound(len(audio), fmt))
        transcription_id = new_ulid()
        key = audio_key(owner, transcription_id, fmt)
        item = self._new_item(owner, source="api", fmt=fmt, key=key, session_id=request.session_id,
                              language=request.language, reservation=reservation)
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=audio, ContentType=FORMATS[fmt][1])
            self.store.put(item)
        except BaseException:
            self._release(reservation)
            raise
        try:
            self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=transcription_id,
                                     input=json.dumps({"transcriptionId": transcription_id, "owner": owner}))
        except ClientError as exc:
            logger.warning("Could not start the transcription workflow", extra={"code": error_code(exc)})
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            self.store.delete(owner, item["SK"])
            self._release(reservation)
            raise ServiceUnavailable("The transcription could not be started; retry in a moment.",
                                     headers={"Retry-After": "2"}) from exc
        return _out(item)

    def upload_url(self, owner: str, request: UploadUrlRequest) -> UploadUrlOut:
        """A presigned POST for one recording: S3 itself refuses a file over the size it is signed
        for (``content-length-range``) or of another content type."""
        max_bytes = request.size_bytes
        reservation = self._reserve(owner, audio_seconds_bound(max_bytes, request.format))
        transcription_id = new_ulid()
        key = upload_key(owner, transcription_id, request.format)
        item = self._new_item(owner, source="upload", fmt=request.format, key=key, session_id=request.session_id,
                              language=request.language, reservation=reservation)
        item["maxBytes"] = max_bytes
        try:
            self.store.put(item)
        except BaseException:
            self._release(reservation)
            raise
        content_type = FORMATS[request.format][1]
        post = self.s3.generate_presigned_post(
            Bucket=self.bucket, Key=key, Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=self.upload_url_seconds)
        expires = iso_micros(utcnow() + timedelta(seconds=self.upload_url_seconds))
        return UploadUrlOut(transcription_id=transcription_id, upload_url=post["url"],
                            fields={str(k): str(v) for k, v in post["fields"].items()}, content_type=content_type,
                            max_bytes=max_bytes, expires_at=expires)

    def get(self, owner: str, transcription_id: str) -> TranscriptionOut:
        item = self.store.get(owner, keys.transcription_sk(transcription_id)) if is_ulid(transcription_id) else None
        if not item:
            raise NotFound(f"Transcription {transcription_id!r} was not found.")
        return _out(self._resolved(item))

    def _resolved(self, item: dict[str, Any]) -> dict[str, Any]:
        """The record as it stands, or - when it is still queued or running after its workflow must
        have ended (the state machine's TimeoutSeconds, after the upload URL's lifetime for an
        upload) - resolved as failed, and saved so (conditionally on what was read)."""
        status = item["status"]
        if status not in ("queued", "running"):
            return item
        waiting_for_upload = status == "queued" and item.get("source") == "upload"
        deadline = parse_iso(item["updatedAt"]) + WORKFLOW_TIMEOUT + STALE_MARGIN
        if waiting_for_upload:
            deadline += timedelta(seconds=self.upload_url_seconds)
        now = utcnow()
        if now <= deadline:
            return item
        code = "UploadNotReceived" if waiting_for_upload else "TranscriptionInterrupted"
        resolved = {**item, "status": "failed", "reason": {"code": code, "message": FAILURE_MESSAGES[code]},
                    "updatedAt": iso_micros(now)}
        logger.warning("Transcription outlived its workflow; resolved as failed",
                       extra={"transcription_id": item["transcriptionId"], "was": status, "code": code})
        release(self.store, _reservation_of({"owner": item["PK"], **item}))  # nothing was (or will be) billed
        try:
            self.store.update(
                Key={"PK": item["PK"], "SK": item["SK"]},
                UpdateExpression="SET #st = :failed, reason = :reason, updatedAt = :now",
                ConditionExpression="#st = :seen AND updatedAt = :seen_at",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":failed": "failed", ":reason": resolved["reason"],
                                           ":now": resolved["updatedAt"], ":seen": status,
                                           ":seen_at": item["updatedAt"]})
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return self.store.get(item["PK"], item["SK"]) or resolved  # it changed meanwhile: show that
        except ServiceUnavailable:
            logger.warning("Could not save the resolution; the next read tries again")
        return resolved


def stream_url(credentials: Any, region: str, *, expires: int = 60, language: str = "en-US",
               sample_rate: int = 16000, endpoint: str = "") -> StreamUrlOut:
    """A presigned ``wss://`` URL for Transcribe streaming (SigV4 query signing), as the seed's
    ``get_transcribe_url``: PCM, 16 kHz, en-US, valid ``expires`` seconds.

    ``endpoint`` (``ws[s]://host:port``) replaces Transcribe's own: the local stack's emulator,
    which checks the same signature."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    scheme, host = "wss", f"transcribestreaming.{region}.amazonaws.com:8443"
    if endpoint:
        scheme, _, host = endpoint.rstrip("/").partition("://")
    url = (f"https://{host}/stream-transcription-websocket?language-code={language}"
           f"&media-encoding=pcm&sample-rate={sample_rate}")
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(credentials, "transcribe", region, expires=expires).add_auth(request)
    signed = str(request.url)
    return StreamUrlOut(url=f"{scheme}://" + signed[len("https://"):], language_code=language,
                        sample_rate=sample_rate, expires_at=iso_micros(utcnow() + timedelta(seconds=expires)))


class StreamGrant:
    """Meters a streaming URL as what it grants. The client streams to Transcribe directly, so how
    long it really streams is never known here: each URL reserves ``seconds`` of streaming
    transcription before it is signed (429 over quota, and no URL), then publishes one usage event
    of ``seconds`` that settles the reservation. A URL that could not be made releases it."""

    def __init__(self, quota: QuotaGuard, publisher: Any, *, seconds: int) -> None:
        self.quota = quota
        self.publisher = publisher
        self.seconds = seconds

    def issue(self, owner: str, sign: Callable[[], StreamUrlOut]) -> StreamUrlOut:
        event = UsageEvent(owner=owner, product="tutor", engine="transcribe", model="streaming",
                           operation="stt-stream", audio_seconds=float(self.seconds))
        reservation = self.quota.reserve(owner, Bound(cost_usd=self.publisher.prices.cost(event)),
                                         operation="stt-stream")
        try:
            url = sign()
        except BaseException:
            self.quota.release(reservation)
            raise
        self.publisher.publish(event.model_copy(update={"event_id": f"stream-{new_ulid()}"}).settling(reservation))
        return url.model_copy(update={"metered_seconds": self.seconds})


def _reservation_of(job: dict[str, Any]) -> Reservation | None:
    """The quota reservation a job (or a transcription record) carries, if any."""
    if not job.get("reservationId") or not job.get("owner"):
        return None
    return Reservation(id=str(job["reservationId"]), owner=str(job["owner"]), tokens=0,
                       cost_usd=float(job.get("reservedCostUsd") or 0))


# -- the workflow's tasks --------------------------------------------------------------------------
FAILURE_MESSAGES: dict[str, str] = {
    "TranscriptionJobFailed": "Transcribe could not process the audio{detail}. Check that the recording "
                              "is not silent, truncated or corrupted, then send it again.",
    "TranscriptionTimedOut": "The transcription did not finish in time. Try a shorter recording, or retry later.",
    "TranscriptionNotFound": "The transcription record was missing; request a new upload URL and upload again.",
    "TranscriptMissing": "Transcribe finished but produced no transcript; send the recording again.",
    "TranscriptMalformed": "Transcribe's result could not be read; send the recording again.",
    "TranscriptTooLarge": "The recording is too long for one transcript; split it into parts of a few minutes.",
    "TranscriptionInterrupted": "The transcription stopped before it finished; send the recording again.",
    "UploadNotReceived": "No recording arrived before the upload URL expired; request a new upload URL and upload "
                         "again.",
}
TASK_TOKEN_TTL = timedelta(days=1)
INTERNAL_MESSAGE = "Something went wrong on our side while transcribing; send the recording again."
# The transcription workflow's TimeoutSeconds (statemachines/transcription.asl.json): no execution runs
# longer, so a record still queued or running after it (and STALE_MARGIN) has no workflow left.
WORKFLOW_TIMEOUT = timedelta(seconds=7200)
STALE_MARGIN = timedelta(minutes=5)
# Transcribe bills at least this much audio for a job; metered when nothing tells a job's length.
MIN_BILLED_SECONDS = 15.0
# S3 answers that mean "try again" (botocore retried them already): raised as ServiceUnavailable.
TRANSIENT_S3_CODES = frozenset({"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout", "500", "503"})


def _transient(exc: Exception, what: str) -> ServiceUnavailable:
    """A dependency's failure that a retry can cure, as the named error the workflow retries."""
    logger.warning("Dependency unavailable", extra={"operation": what, "error": type(exc).__name__,
                                                    "code": error_code(exc) if isinstance(exc, ClientError) else ""})
    return ServiceUnavailable(f"{what} failed: {type(exc).__name__}; retry.")


class TranscriptionNotRunning(Exception):
    """Collect found the transcription neither running nor completed (it was resolved as failed or
    removed meanwhile): the result is not saved over it."""


def _task_input(event: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(the execution's input, the execution's id) from a task's Parameters
    (``{"input.$": "$", "executionId.$": "$$.Execution.Id"}``); a bare input has no id."""
    if isinstance(event.get("input"), dict) and "executionId" in event:
        return event["input"], str(event["executionId"])
    return event, ""


class TranscriptionSteps:
    def __init__(self, store: Store, s3: Any, transcribe: Any, *, bucket: str, stage: str,
                 retention_days: int = 90, publisher: Any = None) -> None:
        self.store = store
        self.s3 = s3
        self.transcribe = transcribe
        self.bucket = bucket
        self.stage = stage
        self.retention = timedelta(days=retention_days)
        self.publisher = publisher

    def _job(self, item: dict[str, Any]) -> dict[str, Any]:
        owner, tid = item["PK"], item["transcriptionId"]
        return {
            "transcriptionId": tid, "owner": owner, "sessionId": item.get("sessionId", ""),
            "language": item["language"], "mediaFormat": FORMATS[item["format"]][0], "bucket": self.bucket,
            "audioKey": item["audioKey"], "mediaUri": f"s3://{self.bucket}/{item['audioKey']}",
            "transcriptKey": transcript_key(owner, tid), "jobName": job_name(self.stage, tid),
            # TTL of the task-token item the state machine stores while it waits for Transcribe's event
            # (a string: the workflow writes it as a DynamoDB N). A day outlives any wait.
            "waitExpiresAt": str(int((utcnow() + TASK_TOKEN_TTL).timestamp())),
            # The quota reservation the API took for this recording: settled by the job's usage event,
            # released by the failure path.
            "reservationId": str(item.get("reservationId", "")),
            "reservedCostUsd": str(item.get("reservedCostUsd", "0")),
        }

    @staticmethod
    def _identify(state: dict[str, Any]) -> tuple[str, str] | None:
        """(owner, transcription id) from a direct start or an S3 "Object Created" event."""
        if state.get("transcriptionId") and state.get("owner"):
            return str(state["owner"]), str(state["transcriptionId"])
        key = ((state.get("detail") or {}).get("object") or {}).get("key", "")
        parsed = parse_key(str(key))
        return (parsed.owner, parsed.transcription_id) if parsed else None

    def _record(self, owner: str, transcription_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.transcription_sk(transcription_id))

    def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        """Normalise the execution's input, check an upload, mark the transcription running.

        Marking is conditional and names the execution: a retry of this task (its first attempt
        marked the record, then its answer was lost) finds its own mark and goes on; another
        execution for the same transcription is ``TranscriptionAlreadyStarted``."""
        state, execution = _task_input(event)
        found = self._identify(state)
        item = self._record(*found) if found else None
        if not item:
            raise TranscriptionNotFound(f"No transcription {found[1] if found else '(no id in the input)'}")
        if item["status"] == "running" and execution and item.get("executionId") == execution:
            return self._job(item)
        if item["status"] != "queued":
            self._discard_late_upload(item, state)
            raise TranscriptionAlreadyStarted(f"Transcription {item['transcriptionId']} is {item['status']}")
        if "detail" in state:
            self._check_upload(item, state["detail"])
        try:
            self.store.update(
                Key={"PK": item["PK"], "SK": item["SK"]},
                UpdateExpression="SET #st = :running, updatedAt = :now, executionId = :execution",
                ConditionExpression="#st = :queued",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":running": "running", ":queued": "queued", ":now": iso_micros(utcnow()),
                                           ":execution": execution or "-"})
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise TranscriptionAlreadyStarted(f"Transcription {item['transcriptionId']} started meanwhile") from exc
            raise
        return self._job(item)

    def _discard_late_upload(self, item: dict[str, Any], state: dict[str, Any]) -> None:
        """An object uploaded (again) for a transcription that has finished — its upload policy
        reused before it expired — is an orphan nobody will clean up: delete it at once. (While
        the transcription runs, its own cleanup deletes that key when it ends.)"""
        key = str(((state.get("detail") or {}).get("object") or {}).get("key", ""))
        if item["status"] in ("completed", "failed") and key and key == item.get("audioKey") \
                and item.get("source") == "upload":
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            logger.info("Late upload for a finished transcription deleted",
                        extra={"transcription_id": item["transcriptionId"], "status": item["status"]})

    def _check_upload(self, item: dict[str, Any], detail: dict[str, Any]) -> None:
        obj = detail.get("object") or {}
        if item.get("source") != "upload" or obj.get("key") != item.get("audioKey"):
            raise TranscriptionAlreadyStarted("This object is not the upload this transcription waits for")
        size = int(obj.get("size", 0))
        limit = int(item.get("maxBytes", MAX_UPLOAD_BYTES))
        if size == 0:
            raise UploadRejected("The uploaded file is empty.")
        if size > limit:  # S3 enforces the policy's range; this holds for anything that bypassed it
            raise UploadRejected(f"The uploaded file is {size} bytes; at most {limit} are accepted.")
        try:
            head = self.s3.get_object(Bucket=self.bucket, Key=obj["key"], Range="bytes=0-63")["Body"].read()
        except ClientError as exc:
            if error_code(exc) in TRANSIENT_S3_CODES:
                raise _transient(exc, "Reading the upload") from exc
            raise
        except (BotoCoreError, OSError) as exc:
            raise _transient(exc, "Reading the upload") from exc
        found = detect_format(head)
        if found != item["format"]:
            raise UploadRejected(f"The uploaded file is not {item['format']} audio"
                                 + (f" (it looks like {found})." if found else "."))

    # -- collect: one fact, one write ------------------------------------------------------------
    def _read_transcript(self, job: dict[str, Any]) -> Transcript:
        """Transcribe's output file, parsed. TranscriptMissing / TranscriptMalformed name what is
        wrong with it; ServiceUnavailable, that S3 could not answer."""
        try:
            body = self.s3.get_object(Bucket=job["bucket"], Key=job["transcriptKey"])["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise TranscriptMissing(f"The transcript file of {job['transcriptionId']} does not exist") from exc
            if error_code(exc) in TRANSIENT_S3_CODES:
                raise _transient(exc, "Reading the transcript") from exc
            raise
        except (BotoCoreError, OSError) as exc:
            raise _transient(exc, "Reading the transcript") from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise TranscriptMalformed("The output file is not JSON") from exc
        return parse_transcript(document)

    def collect(self, state: dict[str, Any]) -> dict[str, Any]:
        """Read and parse Transcribe's output; save it on the transcription and under its session
        in ONE transaction (conditional on the transcription still running); meter the job; the
        ``completed`` outcome.

        Idempotent: a retry after the transaction went through (the first attempt timed out
        before answering) finds the transcription completed and answers the same outcome. Every
        job that reaches this step was completed, hence billed, by Transcribe: it is metered on
        every path out of here, also when its transcript is missing or unreadable."""
        job = state["job"]
        owner, tid = job["owner"], job["transcriptionId"]
        try:
            transcript = self._read_transcript(job)
        except (TranscriptMissing, TranscriptMalformed):
            self._meter(job, self._billed_seconds(job, None))
            raise
        seconds = self._billed_seconds(job, transcript)
        words = [{"text": w.text, "start": Decimal(str(w.start)), "end": Decimal(str(w.end)),
                  "confidence": Decimal(str(w.confidence))} for w in transcript.words]
        duration = Decimal(str(transcript.duration_seconds))
        language = transcript.language or job["language"]
        if len(json.dumps({"t": transcript.text, "w": words}, default=str)) > MAX_TRANSCRIPT_ITEM_BYTES:
            self._meter(job, seconds)
            raise TranscriptTooLarge(f"{len(words)} words")
        now = iso_micros(utcnow())
        session_id = job.get("sessionId") or ""
        ops: list[dict[str, Any]] = [{"Update": {
            "Key": {"PK": owner, "SK": keys.transcription_sk(tid)},
            "UpdateExpression": "SET #st = :done, #tx = :text, words = :words, durationSeconds = :dur, "
                                "billedSeconds = :billed, #lang = :lang, updatedAt = :now REMOVE reason",
            "ConditionExpression": "#st = :running",
            "ExpressionAttributeNames": {"#st": "status", "#tx": "text", "#lang": "language"},
            "ExpressionAttributeValues": {":done": "completed", ":running": "running", ":text": transcript.text,
                                          ":words": words, ":dur": duration, ":billed": Decimal(str(seconds)),
                                          ":lang": language, ":now": now},
        }}]
        if session_id:
            ops.append({"Put": {"Item": {
                "PK": owner, "SK": keys.session_transcript_sk(session_id, tid), "type": "TRANSCRIPT",
                "transcriptionId": tid, "sessionId": session_id, "text": transcript.text, "language": language,
                "durationSeconds": duration, "words": words, "createdAt": now,
                "expiresAt": int((utcnow() + self.retention).timestamp()),
            }}})
        try:
            self.store.transact(ops)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            item = self._record(owner, tid)  # the condition failed: done already, or not ours to finish
            if not item or item["status"] != "completed":
                self._meter(job, seconds)
                status = item["status"] if item else "gone"
                raise TranscriptionNotRunning(f"Transcription {tid} is {status}; its transcript is not saved") from exc
            logger.info("Transcript already saved (a retried collect)", extra={"transcription_id": tid})
            return self._completed(job, item)
        self._meter(job, seconds)
        return self._completed(job, {"transcriptionId": tid, "sessionId": session_id, "language": language,
                                     "durationSeconds": duration, "words": words})

    def _completed(self, job: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        """The ``completed`` outcome (cleanup targets and the TranscriptReady event) of a saved transcript."""
        return {
            "status": "completed", "cleanup": self._cleanup(job), "eventType": "TranscriptReady",
            "event": {"transcriptionId": job["transcriptionId"], "owner": job["owner"],
                      "sessionId": item.get("sessionId") or None, "language": item.get("language", job["language"]),
                      "durationSeconds": float(item.get("durationSeconds", 0)),
                      "wordCount": len(item.get("words") or [])},
        }

    # -- metering: every job Transcribe completed, once ------------------------------------------
    def _audio_seconds(self, job: dict[str, Any]) -> float | None:
        """The recording's length from its container (two ranged reads), or None."""
        from parley.speech.audio_length import WINDOW, audio_seconds

        fmt = job.get("mediaFormat") or job["audioKey"].rsplit(".", 1)[-1]
        try:
            head_part = self.s3.get_object(Bucket=job["bucket"], Key=job["audioKey"], Range=f"bytes=0-{WINDOW - 1}")
            head = head_part["Body"].read()
            size = int(str(head_part.get("ContentRange", "")).rsplit("/", 1)[-1] or len(head)) \
                if head_part.get("ContentRange") else len(head)
            tail = head
            if size > WINDOW:
                tail = self.s3.get_object(Bucket=job["bucket"], Key=job["audioKey"],
                                          Range=f"bytes=-{WINDOW}")["Body"].read()
        except (ClientError, BotoCoreError, OSError, ValueError) as exc:
            logger.info("Could not read the recording's length", extra={"error": type(exc).__name__})
            return None
        return audio_seconds(head, tail, size, fmt)

    def _billed_seconds(self, job: dict[str, Any], transcript: Transcript | None) -> float:
        """What Transcribe billed for the job, as far as we can tell: the longer of the recording
        (its container) and the transcript (its last word); Transcribe's minimum when neither says."""
        known = [s for s in (self._audio_seconds(job), transcript.duration_seconds if transcript else None) if s]
        return round(max(known), 3) if known else MIN_BILLED_SECONDS

    def _meter(self, job: dict[str, Any], seconds: float) -> None:
        """Publish the job's usage event. Its id is the transcription's, so however many paths
        meter the same job (a retried collect, the failure step after it) it is counted once."""
        if self.publisher is None:
            return
        self.publisher.publish(UsageEvent(
            event_id=f"stt-{job['transcriptionId']}", owner=job["owner"], product="tutor", engine="transcribe",
            model="standard", operation="stt", audio_seconds=seconds).settling(_reservation_of(job)))

    def _meter_completed_job(self, job: dict[str, Any], item: dict[str, Any] | None) -> None:
        """Meter a job Transcribe completed whose collect did not finish: from the saved transcript
        if there is one, else the transcript file, else the recording."""
        if item and item.get("billedSeconds") is not None:
            self._meter(job, float(item["billedSeconds"]))
            return
        try:
            transcript: Transcript | None = self._read_transcript(job)
        except (TranscriptMissing, TranscriptMalformed, ServiceUnavailable, ClientError):
            transcript = None
        self._meter(job, self._billed_seconds(job, transcript))

    def finish_late_job(self, name: str) -> bool:
        """A job Transcribe completed after its workflow stopped waiting for it (its polls ran out,
        its polling kept failing, it timed out, it was stopped): Transcribe billed it, so meter it
        (once: the same event id as every other path), and delete its transcript file and the job,
        which no workflow will. False - nothing done - while a workflow still owns the
        transcription (it collects and meters the job itself), or when the job is already gone."""
        try:
            found = self.transcribe.get_transcription_job(TranscriptionJobName=name)["TranscriptionJob"]
        except ClientError as exc:
            if error_code(exc) in ("NotFoundException", "BadRequestException"):
                return False  # deleted: its workflow cleaned up after it
            raise
        media = str((found.get("Media") or {}).get("MediaFileUri", ""))
        parsed = parse_key(media.removeprefix(f"s3://{self.bucket}/"))
        if parsed is None or job_name(self.stage, parsed.transcription_id) != name:
            logger.warning("A completed job whose recording is not ours", extra={"job_name": name})
            return False
        item = self._record(parsed.owner, parsed.transcription_id)
        if item is not None and item["status"] in ("queued", "running"):
            return False
        job = {"transcriptionId": parsed.transcription_id, "owner": parsed.owner, "bucket": self.bucket,
               "audioKey": media.removeprefix(f"s3://{self.bucket}/"), "mediaFormat": FORMATS[parsed.fmt][0],
               "transcriptKey": transcript_key(parsed.owner, parsed.transcription_id), "jobName": name}
        if item is None or item["status"] != "completed":  # a completed one was collected and metered
            self._meter_completed_job(job, item)
        logger.warning("Finished a job Transcribe completed after its workflow ended",
                       extra={"job_name": name, "was": item["status"] if item else "gone"})
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=job["transcriptKey"])
            self.transcribe.delete_transcription_job(TranscriptionJobName=name)
        except ClientError as exc:
            if error_code(exc) not in ("NotFoundException", "BadRequestException"):
                raise  # Lambda retries the event; metering again is counted once
        return True

    # -- the failure path ------------------------------------------------------------------------
    def _cleanup(self, job: dict[str, Any]) -> dict[str, str]:
        return {k: str(job[k]) for k in ("bucket", "audioKey", "transcriptKey", "jobName")}

    def record_failure(self, state: dict[str, Any]) -> dict[str, Any]:
        """Mark the transcription failed with a reason a person can act on; the outcome to clean
        up and announce.

        An outcome that is already terminal is kept: a transcription that completed (its collect
        saved the transcript, then failed to answer) stays completed and is announced as such; one
        already failed keeps its reason. A job Transcribe completed is metered whatever failed
        after it. A transcription that does not exist cleans up only an upload of ours that
        started the workflow (nothing else exists to clean)."""
        error = state.get("error") or {}
        name = str(error.get("Error", "States.Runtime"))
        cause = str(error.get("Cause", ""))
        job = state.get("job")
        found = (job["owner"], job["transcriptionId"]) if job else self._identify(state)
        item = self._record(*found) if found else None
        if job is None and item is not None:
            job = self._job(item)
        if job is None:
            return self._orphan(state, name)
        if self._job_completed(state, job):
            self._meter_completed_job(job, item)  # settles its quota reservation too
        elif item is None or item["status"] != "completed":
            release(self.store, _reservation_of(job))  # nothing was transcribed: nothing is billed
        if (kept := self._terminal(job, item, name)) is not None:
            return kept
        message = self._message(name, cause, job)
        code = name if name in FAILURE_MESSAGES or name == "UploadRejected" else "INTERNAL_ERROR"
        logger.warning("Transcription failed", extra={"error": name, "cause": redact_owners(cause)[:500],
                                                      "transcription_id": job.get("transcriptionId")})
        reason = {"code": code, "message": message}
        if item is not None:
            try:
                self.store.update(
                    Key={"PK": job["owner"], "SK": keys.transcription_sk(job["transcriptionId"])},
                    UpdateExpression="SET #st = :failed, reason = :reason, updatedAt = :now",
                    ConditionExpression="#st IN (:queued, :running)",
                    ExpressionAttributeNames={"#st": "status"},
                    ExpressionAttributeValues={":failed": "failed", ":queued": "queued", ":running": "running",
                                               ":reason": reason, ":now": iso_micros(utcnow())})
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                # It ended meanwhile (or was removed): report what it ended as.
                kept = self._terminal(job, self._record(job["owner"], job["transcriptionId"]), name)
                if kept is not None:
                    return kept
        return self._failed(job, reason)

    def _job_completed(self, state: dict[str, Any], job: dict[str, Any]) -> bool:
        """Whether Transcribe completed (and billed) the job: as the workflow last saw it, or - when the
        workflow stopped waiting for a job it had started (polls ran out, a poll kept failing) - as
        Transcribe says now."""
        seen = (state.get("jobStatus") or {}).get("status")
        if seen == "COMPLETED":
            return True
        if seen == "FAILED" or "eventWait" not in state:  # the job failed, or was never started
            return False
        try:
            found = self.transcribe.get_transcription_job(TranscriptionJobName=job["jobName"])
        except (ClientError, BotoCoreError):
            logger.warning("Could not ask Transcribe whether the job completed", extra={"job_name": job["jobName"]})
            return False
        return found["TranscriptionJob"].get("TranscriptionJobStatus") == "COMPLETED"

    def _terminal(self, job: dict[str, Any], item: dict[str, Any] | None, error: str) -> dict[str, Any] | None:
        """The outcome of a transcription that already ended, kept as it is; None if it has not."""
        if item is not None and item["status"] == "completed":
            logger.info("Transcription already completed; its outcome is kept",
                        extra={"transcription_id": job["transcriptionId"], "error": error})
            return self._completed(job, item)
        if item is not None and item["status"] == "failed" and item.get("reason"):
            return self._failed(job, dict(item["reason"]))
        return None

    def _failed(self, job: dict[str, Any], reason: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "failed", "cleanup": self._cleanup(job), "eventType": "TranscriptionFailed",
            "event": {"transcriptionId": job.get("transcriptionId"), "owner": job.get("owner"),
                      "sessionId": job.get("sessionId") or None,
                      "reason": {"code": str(reason.get("code")), "message": str(reason.get("message"))}},
        }

    def _orphan(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        """No transcription: nothing to mark or announce. An upload under our key layout that
        started the workflow is deleted (no one will transcribe it); nothing else exists."""
        key = str(((state.get("detail") or {}).get("object") or {}).get("key", ""))
        logger.warning("Workflow for a transcription that does not exist", extra={"error": name, "key": key[:300]})
        cleanup = {"bucket": self.bucket, "audioKey": key} if parse_key(key) else {}
        return {"status": "failed", "cleanup": cleanup}

    def _message(self, name: str, cause: str, job: dict[str, Any]) -> str:
        if name == "UploadRejected":
            try:
                return str(json.loads(cause).get("errorMessage")) or INTERNAL_MESSAGE
            except (ValueError, AttributeError):
                return INTERNAL_MESSAGE
        if name == "TranscriptionJobFailed":
            detail = ""
            try:
                found = self.transcribe.get_transcription_job(TranscriptionJobName=job["jobName"])
                reason = found["TranscriptionJob"].get("FailureReason")
                detail = f" ({reason})" if reason else ""
            except (ClientError, BotoCoreError):
                logger.warning("Could not read the failed job's reason")
            return FAILURE_MESSAGES[name].format(detail=detail)
        return FAILURE_MESSAGES.get(name, INTERNAL_MESSAGE)


# -- the event-driven wait: Transcribe's job-state events -> the waiting execution ----------------
# After StartJob the state machine stores its task token under the job's name (keys.transcribe_job_pk)
# and waits (``aws-sdk:dynamodb:putItem.waitForTaskToken``). Transcribe announces a finished job on the
# default bus ("Transcribe Job State Change"); the rule sends our jobs' COMPLETED/FAILED events to the
# job-events function, which resumes the execution with ``SendTaskSuccess {"status": ...}``. Anything
# that goes wrong here costs time, not the transcription: the wait times out into the poll loop.
TranscribeJobStatus = Literal["QUEUED", "IN_PROGRESS", "COMPLETED", "FAILED"]
JobEventOutcome = Literal["resumed", "already-resumed", "not-waiting", "not-ours", "not-final", "finished-late"]
# SendTaskSuccess errors meaning "nobody waits for this token any more": the task timed out into
# the poll loop, the token was used by an earlier copy of the event, or the execution has ended.
STALE_TOKEN_ERRORS = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


class TranscribeJobStateDetail(BaseModel):
    """``detail`` of Transcribe's "Transcribe Job State Change" event (documented shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    transcription_job_name: str = Field(alias="TranscriptionJobName", min_length=1, max_length=200)
    transcription_job_status: TranscribeJobStatus = Field(alias="TranscriptionJobStatus")
    failure_reason: str | None = Field(None, alias="FailureReason")


class TranscribeJobStateChange(BaseModel):
    """The EventBridge event Transcribe puts on the account's default bus."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = ""
    source: Literal["aws.transcribe"]
    detail_type: Literal["Transcribe Job State Change"] = Field(alias="detail-type")
    detail: TranscribeJobStateDetail


class JobEventResult(ApiModel):
    job_name: str
    status: str
    outcome: JobEventOutcome


class JobEvents:
    """Resume the execution waiting for a Transcribe job (idempotent: a repeated or late event is
    logged and ignored). A job that COMPLETED when no execution waits for it any more, and whose
    workflow has ended, is finished here: metered and cleaned up (``TranscriptionSteps.finish_late_job``)."""

    def __init__(self, store: Store, sfn: Any, *, stage: str, steps: TranscriptionSteps | None = None) -> None:
        self.store = store
        self.sfn = sfn
        self.steps = steps
        self.our_jobs = re.compile(rf"^{re.escape(job_name(stage, ''))}[0-9A-HJKMNP-TV-Z]{{26}}$")

    def handle(self, event: dict[str, Any]) -> JobEventResult:
        change = TranscribeJobStateChange.model_validate(event)
        name, status = change.detail.transcription_job_name, change.detail.transcription_job_status

        def result(outcome: JobEventOutcome) -> JobEventResult:
            logger.info("Transcribe job event", extra={"job_name": name, "job_status": status, "outcome": outcome,
                                                       "event_id": change.id})
            return JobEventResult(job_name=name, status=status, outcome=outcome)

        if not self.our_jobs.match(name):  # the rule matches our prefix; another stage may share it
            return result("not-ours")
        if status not in ("COMPLETED", "FAILED"):
            return result("not-final")
        item = self.store.get(keys.transcribe_job_pk(name), keys.JOB_WAIT_SK)
        if not item or not item.get("taskToken"):
            # No execution waits (its token was never stored, or expired): if one runs, it polls.
            return result(self._late(name, status) or "not-waiting")
        output = {"status": status, "jobName": name}
        if change.detail.failure_reason:
            output["failureReason"] = change.detail.failure_reason[:1000]
        try:
            self.sfn.send_task_success(taskToken=item["taskToken"], output=json.dumps(output))
        except ClientError as exc:
            if error_code(exc) in STALE_TOKEN_ERRORS:
                return result(self._late(name, status) or "already-resumed")
            raise  # transient: Lambda retries the asynchronous invocation; the poll is the safety net
        return result("resumed")

    def _late(self, name: str, status: str) -> JobEventOutcome | None:
        """``finished-late`` if nobody else will meter and clean up this completed job."""
        if status == "COMPLETED" and self.steps is not None and self.steps.finish_late_job(name):
            return "finished-late"
        return None


def steps_from(env: Any) -> TranscriptionSteps:
    """The workflow's task steps, configured from a task function's environment
    (``parley.core.config.TranscriptionStepsEnv``), with the cached clients."""
    from parley.core import clients
    from parley.usage.publisher import publisher_from

    return TranscriptionSteps(Store(clients.table(env.table_name)), clients.client("s3"), clients.client("transcribe"),
                              bucket=env.audio_bucket_name, stage=env.stage, retention_days=env.data_retention_days,
                              publisher=publisher_from(env))
