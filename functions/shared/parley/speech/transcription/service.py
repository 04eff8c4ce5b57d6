"""The API side of batch speech-to-text: the two ways in, and a transcription's status.

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

import json
from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from parley.core.errors import NotFound, ServiceUnavailable
from parley.core.ids import is_ulid, iso_micros, new_ulid, parse_iso, utcnow
from parley.core.observability import logger
from parley.data.store import Store, error_code
from parley.data.transcriptions import TranscriptionRecords
from parley.speech.transcription.audio import FORMATS, TRANSCRIPTION_SETTLE_SECONDS, audio_seconds_bound, decode_audio
from parley.speech.transcription.errors import FAILURE_MESSAGES
from parley.speech.transcription.metering import reservation_of
from parley.speech.transcription.models import (
    CreateTranscription,
    TranscriptionOut,
    UploadUrlOut,
    UploadUrlRequest,
    transcription_out,
)
from parley.speech.transcription.objects import audio_key, upload_key
from parley.usage.events import UsageEvent
from parley.usage.pricing import DEFAULT_PRICES, PriceTable
from parley.usage.quota import Bound, QuotaGuard, Reservation, release

# The transcription workflow's TimeoutSeconds (statemachines/transcription.asl.json): no execution runs
# longer, so a record still queued or running after it (and STALE_MARGIN) has no workflow left.
WORKFLOW_TIMEOUT = timedelta(seconds=7200)
STALE_MARGIN = timedelta(minutes=5)


@dataclass
class Transcriptions:
    """The API side. With a quota guard, each recording reserves the most its transcription can
    cost before anything is stored or started (429 over quota); the workflow's usage event settles
    the reservation, and its failure path releases it."""

    store: Store
    s3: Any
    sfn: Any
    _: KW_ONLY
    bucket: str
    state_machine_arn: str
    retention_days: int
    upload_url_seconds: int = 300
    quota: QuotaGuard | None = None
    prices: PriceTable = DEFAULT_PRICES
    records: TranscriptionRecords = field(init=False)

    def __post_init__(self) -> None:
        self.records = TranscriptionRecords(self.store)

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)

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
        return self.records.new_item(
            owner, transcription_id, source=source, fmt=fmt, key=key, language=language, session_id=session_id,
            now=now, expires=now + self.retention, reservation_id=reservation.id if reservation else None,
            reserved_cost_usd=reservation.cost_usd if reservation else 0.0)

    def create(self, owner: str, request: CreateTranscription) -> TranscriptionOut:
        audio, fmt = decode_audio(request.audio, request.format)
        reservation = self._reserve(owner, audio_seconds_bound(len(audio), fmt))
        transcription_id = new_ulid()
        key = audio_key(owner, transcription_id, fmt)
        item = self._new_item(owner, source="api", fmt=fmt, key=key, session_id=request.session_id,
                              language=request.language, reservation=reservation)
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=audio, ContentType=FORMATS[fmt][1])
            self.records.put(item)
        except BaseException:
            self._release(reservation)
            raise
        try:
            self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=transcription_id,
                                     input=json.dumps({"transcriptionId": transcription_id, "owner": owner}))
        except ClientError as exc:
            logger.warning("Could not start the transcription workflow", extra={"code": error_code(exc)})
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            self.records.delete(owner, transcription_id)
            self._release(reservation)
            raise ServiceUnavailable("The transcription could not be started; retry in a moment.",
                                     headers={"Retry-After": "2"}) from exc
        return transcription_out(item)

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
            self.records.put(item)
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
        item = self.records.get(owner, transcription_id) if is_ulid(transcription_id) else None
        if not item:
            raise NotFound(f"Transcription {transcription_id!r} was not found.")
        return transcription_out(self._resolved(item))

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
        release(self.store, reservation_of({"owner": item["PK"], **item}))  # nothing was (or will be) billed
        try:
            if not self.records.resolve_failed(item, resolved["reason"], now=resolved["updatedAt"]):
                # it changed meanwhile: show that
                return self.records.get(item["PK"], item["transcriptionId"]) or resolved
        except ServiceUnavailable:
            logger.warning("Could not save the resolution; the next read tries again")
        return resolved


def transcriptions_from(env: Any, store: Store, *, state_machine_arn: str,
                        upload_url_seconds: int = 300) -> Transcriptions:
    """The API side, configured from a function's environment (``TranscriptionsEnv``, ``ChatEnv``)."""
    from parley.core import clients
    from parley.usage.quota import guard_from

    return Transcriptions(store, clients.client("s3"), clients.client("stepfunctions"), bucket=env.audio_bucket_name,
                          state_machine_arn=state_machine_arn, retention_days=env.data_retention_days,
                          upload_url_seconds=upload_url_seconds, quota=guard_from(env, store),
                          prices=PriceTable.with_overrides(env.price_table_overrides))
