"""Batch speech-to-text: POST /transcriptions, POST /transcriptions/upload-url, GET /transcriptions/{id}."""

from __future__ import annotations

import os

from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import TranscriptionsEnv
from parley.data.store import Store
from parley.speech.transcription.models import CreateTranscription, TranscriptionOut, UploadUrlOut, UploadUrlRequest
from parley.speech.transcription.service import Transcriptions, transcriptions_from
from parley.tutor.service import Tutor

ENV = TranscriptionsEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def transcriptions() -> Transcriptions:
    return transcriptions_from(ENV, Store(clients.table(ENV.table_name)), state_machine_arn=ENV.state_machine_arn,
                               upload_url_seconds=ENV.upload_url_seconds)


def owner_of_session(session_id: str | None) -> str:
    """The caller, once the session the recording is for (if any) is known to be theirs (else 404)."""
    owner = owner_of(app)
    if session_id:
        tutor = Tutor(Store(clients.table(ENV.table_name)), retention_days=ENV.data_retention_days)
        tutor.get_session(owner, session_id)
    return owner


@app.post("/transcriptions", summary="Transcribe a recording (base64 in JSON); 202 with its id", tags=["Speech"],
          responses={202: {"description": "Queued", "content": {"application/json": {"model": TranscriptionOut}}},
                     429: {"description": "Monthly quota reached; nothing stored or started"}})
def create(body: CreateTranscription) -> tuple[TranscriptionOut, int]:
    return transcriptions().create(owner_of_session(body.session_id), body), 202


@app.post("/transcriptions/upload-url", summary="A presigned S3 POST for a longer recording", tags=["Speech"],
          responses={201: {"description": "Upload here", "content": {"application/json": {"model": UploadUrlOut}}},
                     429: {"description": "Monthly quota reached; no upload URL"}})
def upload_url(body: UploadUrlRequest) -> tuple[UploadUrlOut, int]:
    return transcriptions().upload_url(owner_of_session(body.session_id), body), 201


@app.get("/transcriptions/<transcriptionId>", summary="A transcription's status, text and words", tags=["Speech"])
def get(transcriptionId: str) -> TranscriptionOut:  # noqa: N803 - the path parameter's public name
    return transcriptions().get(owner_of(app), transcriptionId)


handler = rest_handler(app)
