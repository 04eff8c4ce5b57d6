"""Amazon Transcribe's streaming WebSocket API, emulated on loopback for the local stack.

    ws://127.0.0.1:<port>/stream-transcription-websocket?language-code=en-US&media-encoding=pcm
        &sample-rate=16000&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...&X-Amz-Date=...
        &X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=...

The URL is the one AWS documents for ``wss://transcribestreaming.<region>.amazonaws.com:8443``, with
the local stack's address (``GET /transcriptions/stream-url`` hands it out, SigV4-presigned with the
local stack's credentials). The protocol is Transcribe's:

- the client sends binary WebSocket frames, each one event stream message (``local_stack.eventstream``)
  with ``:message-type: event``, ``:event-type: AudioEvent`` and raw audio as payload - PCM, signed
  16-bit little-endian, mono, at ``sample-rate``; an ``AudioEvent`` with an empty payload ends the
  stream. A message wrapped in a signed envelope (``:date``/``:chunk-signature`` headers, the
  message as payload) is unwrapped; the chunk signature itself is not checked.
- the server answers ``TranscriptEvent`` messages (``:message-type: event``, JSON payload
  ``{"Transcript": {"Results": [...]}}``): partial results (``IsPartial: true``) while an utterance
  goes on, then its final result with the same ``ResultId``; items carry ``StartTime``/``EndTime``
  in seconds from the start of the stream, finals add ``Confidence`` and punctuation.
- anything wrong is an exception message (``:message-type: exception``, ``:exception-type``, JSON
  ``{"Message": ...}``), after which the server closes the connection: ``BadRequestException`` for a
  malformed or badly signed URL, an expired one, an unknown ``media-encoding`` or an out-of-range
  ``sample-rate``, an undecodable frame, and 15 s without audio; ``LimitExceededException`` when
  every recogniser is busy.

Recognition is the batch emulator's (``local_stack.recognizer``): en-US pocketsphinx, English only.
Only ``pcm`` is decoded; ``ogg-opus`` and ``flac`` (valid on AWS) are refused with a message that
says so. Partial results come from the live pass; a final result comes from decoding the whole
utterance again, so it can differ from the last partial, as Transcribe's can.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from . import eventstream
from .sigv4 import SignatureProblem, query_pairs, verify_presigned_url

LOG = logging.getLogger("local_stack")
PATH = "/stream-transcription-websocket"
MEDIA_ENCODINGS = ("pcm", "ogg-opus", "flac")
MAX_URL_EXPIRES = 300  # Transcribe: "The maximum value for X-Amz-Expires is 300 (5 minutes)"
IDLE_SECONDS = 15.0  # Transcribe closes a stream that sends no audio for 15 seconds
MAX_FRAME_BYTES = 1024 * 1024


class StreamRefused(Exception):
    def __init__(self, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message


def bad_request(message: str) -> StreamRefused:
    return StreamRefused("BadRequestException", message)


def _validation(field: str, value: str, constraint: str) -> StreamRefused:
    return bad_request(f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
                       f"constraint: {constraint}")


def stream_settings(raw_query: str) -> dict[str, Any]:
    """language, encoding and rate from the URL, checked as Transcribe checks them."""
    params = dict(query_pairs(raw_query))
    language = params.get("language-code", "")
    encoding = params.get("media-encoding", "")
    rate = params.get("sample-rate", "")
    if not language and params.get("identify-language") != "true":
        raise bad_request("A language-code (or identify-language=true) is required.")
    if not encoding:
        raise bad_request("media-encoding is required.")
    if encoding not in MEDIA_ENCODINGS:
        raise _validation("mediaEncoding", encoding,
                          f"Member must satisfy enum value set: [{', '.join(sorted(MEDIA_ENCODINGS))}]")
    if not rate.isdigit() or not 8000 <= int(rate) <= 48000:
        raise _validation("mediaSampleRateHertz", rate,
                          "Member must have value greater than or equal to 8000 and less than or equal to 48000")
    if encoding != "pcm":
        raise bad_request(f"The local stack's streaming emulator decodes media-encoding=pcm only, not {encoding} "
                          "(Amazon Transcribe accepts it when deployed).")
    if language and not language.lower().startswith("en"):
        raise bad_request(f"The local stack recognises English only (language-code {language}); Amazon "
                          "Transcribe transcribes it when deployed.")
    return {"language": language or "en-US", "rate": int(rate)}


def _item(word: Any, *, final: bool) -> dict[str, Any]:
    item = {"Content": word.text, "EndTime": word.end, "StartTime": word.start, "Type": "pronunciation",
            "VocabularyFilterMatch": False}
    if final:
        item["Confidence"] = word.confidence
    return item


def transcript_event(result: Any) -> dict[str, Any]:
    """A ``TranscriptEvent`` payload for one recogniser result."""
    final = not result.partial
    items = [_item(w, final=final) for w in result.words]
    if final and result.words:
        end = result.words[-1].end
        items.append({"Content": ".", "EndTime": end, "StartTime": end, "Type": "punctuation",
                      "VocabularyFilterMatch": False})
    return {"Transcript": {"Results": [{
        "Alternatives": [{"Items": items, "Transcript": result.transcript}],
        "ChannelId": "ch_0", "EndTime": round(result.end, 3), "IsPartial": result.partial,
        "ResultId": result.result_id, "StartTime": round(result.start, 3),
    }]}}


def audio_of(message: eventstream.Message) -> bytes:
    """The audio of an ``AudioEvent`` (unwrapping a signed envelope); raises StreamRefused."""
    if ":chunk-signature" in message.headers and message.payload:
        try:
            message = eventstream.decode(message.payload)
        except eventstream.EventStreamError as exc:
            raise bad_request(f"The signed envelope does not hold an event stream message: {exc}") from exc
    if ":chunk-signature" in message.headers and not message.payload:
        return b""  # the signed end-of-stream frame
    if message.message_type != "event" or message.event_type != "AudioEvent":
        raise bad_request(f"Expected an AudioEvent, got :message-type {message.message_type!r}, "
                          f":event-type {message.event_type!r}.")
    return message.payload


class StreamingTranscribe:
    """The WebSocket server (the ``websockets`` library's threaded server, one thread a connection)."""

    def __init__(self, *, secrets: Mapping[str, str], region: str, host: str = "127.0.0.1", port: int = 0,
                 idle_seconds: float = IDLE_SECONDS) -> None:
        self.secrets = dict(secrets)
        self.region = region
        self.host = host
        self.port = port
        self.idle_seconds = idle_seconds
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """The endpoint the stream-URL function signs (``ws://host:port``)."""
        return f"ws://{self.host}:{self.port}"

    def start(self) -> StreamingTranscribe:
        self._server = serve(self._serve, self.host, self.port, process_request=self._process_request,
                             max_size=MAX_FRAME_BYTES, compression=None, server_header=None)
        self.port = int(self._server.socket.getsockname()[1])
        threading.Thread(target=self._server.serve_forever, name="transcribe-streaming", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != PATH:
            body = f"No such path: Transcribe streams at {PATH}\n".encode()
            return Response(HTTPStatus.NOT_FOUND.value, "Not Found",
                            Headers({"Content-Type": "text/plain", "Content-Length": str(len(body))}), body)
        return None  # the upgrade happens; problems with the URL are reported as Transcribe does, in a frame

    def _check_url(self, request: Request) -> dict[str, Any]:
        parts = urlsplit(request.path)
        try:
            verify_presigned_url(method="GET", raw_path=parts.path, raw_query=parts.query,
                                 headers=dict(request.headers.raw_items()), secrets=self.secrets,
                                 service="transcribe", max_expires=MAX_URL_EXPIRES)
        except SignatureProblem as problem:
            raise bad_request(problem.message) from problem
        return stream_settings(parts.query)

    def _serve(self, ws: ServerConnection) -> None:
        try:
            settings = self._check_url(ws.request)  # type: ignore[arg-type]
            self._transcribe(ws, settings)
        except StreamRefused as refused:
            with contextlib.suppress(ConnectionClosed):
                ws.send(eventstream.exception(refused.exception_type, refused.message))
                ws.close()
        except ConnectionClosed:
            pass
        except Exception:
            LOG.exception("The streaming Transcribe emulator failed")
            with contextlib.suppress(ConnectionClosed):
                ws.send(eventstream.exception("InternalFailureException",
                                              "A problem occurred while processing the audio."))
                ws.close()

    def _transcribe(self, ws: ServerConnection, settings: dict[str, Any]) -> None:
        from .audio import Resampler
        from .recognizer import RecogniserBusy, recogniser

        try:
            stream = recogniser().stream(timeout=5.0)
        except RecogniserBusy as exc:
            raise StreamRefused("LimitExceededException", "You have reached your limit of concurrent streams in "
                                                          "the local stack; retry when one ends.") from exc
        resampler = Resampler(settings["rate"])
        carry = b""
        with stream:
            while True:
                try:
                    frame = ws.recv(timeout=self.idle_seconds)
                except TimeoutError as exc:
                    raise bad_request(f"Your request timed out because no new audio was received for "
                                      f"{self.idle_seconds:g} seconds.") from exc
                if isinstance(frame, str):
                    raise bad_request("Frames must be binary event stream messages, not text.")
                try:
                    message = eventstream.decode(frame)
                except eventstream.EventStreamError as exc:
                    raise bad_request(f"Could not decode the event stream message: {exc}") from exc
                audio = audio_of(message)
                if not audio:
                    results = stream.feed(resampler.flush()) + stream.finish()
                    self._send(ws, results)
                    ws.close()
                    return
                data = carry + audio
                carry = data[len(data) // 2 * 2:]
                self._send(ws, stream.feed(resampler.feed(data[:len(data) // 2 * 2])))

    @staticmethod
    def _send(ws: ServerConnection, results: list[Any]) -> None:
        for result in results:
            if result.words:
                ws.send(eventstream.event("TranscriptEvent", json.dumps(transcript_event(result)).encode()))


ENDPOINT_VARIABLE = "TRANSCRIBE_STREAMING_ENDPOINT"


def attach(local: Any, resources: contextlib.ExitStack) -> None:
    """Start the emulator and have the stream-URL function sign URLs for it."""
    secrets = {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]}
    server = StreamingTranscribe(secrets=secrets, region=local.stack.region, host=local.host).start()
    resources.callback(server.stop)
    local.runner.env_overrides[ENDPOINT_VARIABLE] = server.url
    local.transcribe_streaming_url = server.url
