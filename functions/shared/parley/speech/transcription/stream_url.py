"""Streaming speech-to-text: a presigned ``wss://`` URL for Transcribe streaming, metered as what it grants.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from parley.core.ids import iso_micros, new_ulid, utcnow
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
