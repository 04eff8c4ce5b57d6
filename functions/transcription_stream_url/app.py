"""GET /transcriptions/stream-url - a presigned wss:// URL for Transcribe streaming (the original
backend's get_transcribe_url), and the same URL for the action API (a ``StreamUrlCall`` invocation).

Its own function so that the credentials that sign the URL are this role's, which may start a
streaming transcription and, besides, only meter it (its reservation and usage event). A presigned
URL carries the access key id and session token but no secret: it authorises the one signed
Transcribe request and nothing else the role may do.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import boto3
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core import clients
from parley.core.api import make_resolver, owner_of
from parley.core.config import StreamUrlEnv
from parley.core.observability import logger, tracer
from parley.data.store import Store
from parley.speech.transcription.models import StreamUrlOut
from parley.speech.transcription.stream_url import StreamGrant, StreamUrls, answer_call, is_call
from parley.usage.publisher import publisher_from
from parley.usage.quota import guard_from

ENV = StreamUrlEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def stream_urls() -> StreamUrls:
    store = Store(clients.table(ENV.table_name))
    grant = StreamGrant(guard_from(ENV, store), publisher_from(ENV), seconds=ENV.streaming_seconds_per_url)
    return StreamUrls(grant, lambda: boto3.session.Session().get_credentials(), region=ENV.region,
                      expires=ENV.stream_url_seconds, endpoint=ENV.transcribe_streaming_endpoint)


@app.get("/transcriptions/stream-url", summary="Presigned wss:// URL for streaming speech-to-text", tags=["Speech"],
         responses={200: {"description": "The URL, and the seconds it is metered as",
                          "content": {"application/json": {"model": StreamUrlOut}}},
                    429: {"description": "Monthly quota reached; no URL"}})
def get_stream_url(
    languageCode: Annotated[str, Query(pattern=r"^[a-z]{2}-[A-Z]{2}$",  # noqa: N803 - the public name
                                       description="What the learner speaks")] = "en-US",
    sampleRate: Annotated[int, Query(ge=8000, le=48000, description="PCM sample rate in Hz")] = 16000,  # noqa: N803
) -> StreamUrlOut:
    return stream_urls().issue(owner_of(app), languageCode, sampleRate)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_call(event):  # the chat function's action API (get_transcribe_url)
        return answer_call(event, stream_urls().issue)
    return app.resolve(event, context)
