"""Streaming speech-to-text: a presigned ``wss://`` URL for Transcribe streaming, metered as what it grants.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from parley.core.errors import ParleyError, ServiceUnavailable
from parley.core.ids import iso_micros, new_ulid, utcnow
from parley.core.observability import logger
from parley.speech.transcription.audio import TranscribeLanguage
from parley.speech.transcription.models import StreamUrlOut
from parley.usage.events import UsageEvent
from parley.usage.quota import Bound, QuotaGuard


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



class StreamUrls:
    """Signs streaming URLs with this function's own credentials, each metered by ``grant``."""

    def __init__(self, grant: StreamGrant, credentials: Callable[[], Any], *, region: str, expires: int,
                 endpoint: str = "") -> None:
        self.grant = grant
        self.credentials = credentials
        self.region = region
        self.expires = expires
        self.endpoint = endpoint

    def issue(self, owner: str, language: str, sample_rate: int) -> StreamUrlOut:
        credentials = self.credentials()
        if credentials is None:
            raise ServiceUnavailable("No credentials to sign the streaming URL.")
        return self.grant.issue(owner, lambda: stream_url(
            credentials.get_frozen_credentials(), self.region, expires=self.expires, language=language,
            sample_rate=sample_rate, endpoint=self.endpoint))

# -- the action API's get_transcribe_url: a direct invocation of the stream-URL function -------------
# The URL must be signed with the stream-URL function's credentials: its role may start a streaming
# transcription and, besides, only meter it. The chat function (which answers the action API) must not
# hold that permission, so it cannot sign the URL itself: it invokes the stream-URL function with a
# ``StreamUrlCall`` (Lambda InvokeFunction, its one permission on that function), which answers with
# the same service as its route. API Gateway never sends an event with this key, so the route cannot
# be reached this way from outside.
CALL_KEY = "streamUrlCall"
RETRY_MESSAGE = "The streaming URL could not be made right now; retry in a moment."


class StreamUrlCall(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: str = Field(pattern=r"^(DEVICE|USER)#[A-Za-z0-9._-]{1,128}$")
    owner_hash: str = Field("", max_length=64, description="The caller's log label (from its authorizer)")
    language: TranscribeLanguage = "en-US"
    sample_rate: int = Field(16000, ge=8000, le=48000)


class CalledFunctionError(ParleyError):
    """An error the stream-URL function answered, passed on as it was (status, code, message, details)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, details=details, headers=headers)
        self.status, self.code = status, code


def is_call(event: dict[str, Any]) -> bool:
    return CALL_KEY in event


def answer_call(event: dict[str, Any], issue: Callable[[str, str, int], StreamUrlOut]) -> dict[str, Any]:
    """The stream-URL function's answer to a ``StreamUrlCall``: ``{"url": ...}`` or ``{"error": ...}``."""
    call = StreamUrlCall.model_validate(event[CALL_KEY])
    logger.append_keys(owner_hash=call.owner_hash)
    try:
        out = issue(call.owner, call.language, call.sample_rate)
    except ParleyError as exc:
        return {"error": {"status": exc.status, "code": exc.code, "message": exc.message, "details": exc.details,
                          "headers": exc.headers}}
    return {"url": out.model_dump(mode="json", by_alias=True)}


def stream_urls_by_call(lambda_client: Any, function_name: str) -> Callable[[str, str, int], StreamUrlOut]:
    """(owner, language, sample rate) -> a URL, signed by the stream-URL function ``function_name``."""
    def call(owner: str, language: str, sample_rate: int) -> StreamUrlOut:
        hashed = str(logger.get_current_keys().get("owner_hash") or "")  # this request's, from its authorizer
        payload = {CALL_KEY: StreamUrlCall(owner=owner, owner_hash=hashed, language=language,
                                           sample_rate=sample_rate).model_dump()}
        try:
            result = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(payload).encode())
            answer = json.loads(result["Payload"].read() or b"null")
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise ServiceUnavailable(RETRY_MESSAGE, headers={"Retry-After": "1"}) from exc
        if result.get("FunctionError") or not isinstance(answer, dict) or not ({"url", "error"} & set(answer)):
            raise ServiceUnavailable(RETRY_MESSAGE, headers={"Retry-After": "1"})
        if "error" in answer:
            error = answer["error"]
            raise CalledFunctionError(int(error.get("status", 500)), str(error.get("code") or "INTERNAL_ERROR"),
                                      str(error.get("message") or RETRY_MESSAGE), list(error.get("details") or []),
                                      {k: str(v) for k, v in (error.get("headers") or {}).items()})
        return StreamUrlOut.model_validate(answer["url"])

    return call
