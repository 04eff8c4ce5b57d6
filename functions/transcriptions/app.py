"""Batch speech-to-text: POST /transcriptions, POST /transcriptions/upload-url, GET /transcriptions/{id}."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core import clients
from parley.core.api import make_resolver, owner_of
from parley.core.config import TranscriptionsEnv
from parley.core.observability import logger, tracer
from parley.data.store import Store
from parley.speech.transcription.models import CreateTranscription, TranscriptionOut, UploadUrlOut, UploadUrlRequest
from parley.speech.transcription.service import Transcriptions, transcriptions_from
from parley.tutor.service import Tutor

ENV = TranscriptionsEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def transcriptions() -> Transcriptions:
    return transcriptions_from(ENV, Store(clients.table(ENV.table_name)), state_machine_arn=ENV.state_machine_arn,
                               upload_url_seconds=ENV.upload_url_seconds)


def _check_session(owner: str, session_id: str | None) -> None:
    if session_id:  # 404 for a session that is not the caller's
        tutor = Tutor(Store(clients.table(ENV.table_name)), retention_days=ENV.data_retention_days)
        tutor.get_session(owner, session_id)


@app.post("/transcriptions", summary="Transcribe a recording (base64 in JSON); 202 with its id", tags=["Speech"],
          responses={202: {"description": "Queued", "content": {"application/json": {"model": TranscriptionOut}}},
                     429: {"description": "Monthly quota reached; nothing stored or started"}})
def create(body: CreateTranscription) -> tuple[TranscriptionOut, int]:
    owner = owner_of(app)
    _check_session(owner, body.session_id)
    return transcriptions().create(owner, body), 202


@app.post("/transcriptions/upload-url", summary="A presigned S3 POST for a longer recording", tags=["Speech"],
          responses={201: {"description": "Upload here", "content": {"application/json": {"model": UploadUrlOut}}},
                     429: {"description": "Monthly quota reached; no upload URL"}})
def upload_url(body: UploadUrlRequest) -> tuple[UploadUrlOut, int]:
    owner = owner_of(app)
    _check_session(owner, body.session_id)
    return transcriptions().upload_url(owner, body), 201


@app.get("/transcriptions/<transcriptionId>", summary="A transcription's status, text and words", tags=["Speech"])
def get(transcriptionId: str) -> TranscriptionOut:  # noqa: N803 - the path parameter's public name
    return transcriptions().get(owner_of(app), transcriptionId)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
