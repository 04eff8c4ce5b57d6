"""Speech services in the emulator: Polly that speaks, Transcribe that listens.

moto's Polly returns 8 NUL bytes for any voice and engine, and moto's Transcribe completes jobs
without writing a transcript. ``emulate_speech()`` (a context manager, active inside ``mock_aws``)
makes both behave like the services:

- **Polly** refuses an engine the voice does not support (``EngineNotSupportedException``, from
  the published table in ``parley.speech.voices.POLLY_VOICES``) and a sample rate its output format does
  not have (``InvalidSampleRateException``), then speaks: espeak-ng from the ``espeakng-loader``
  wheel (``local_stack.voices``, one espeak voice per Polly voice), encoded as the ``OutputFormat``
  asks - ``mp3`` (LAME, 48 kbit/s), ``ogg_vorbis`` or ``pcm`` (16-bit little-endian mono) - at
  Polly's sample rates (22,050 Hz by default for mp3/ogg_vorbis with the standard engine, 24,000 Hz
  with neural, 16,000 Hz for pcm), with the ``Content-Type`` that matches the bytes. Speech marks
  (``json``) stay moto's.
- **Transcribe**, when a job runs, reads the media from the emulated S3, decodes it (PyAV: every
  ``MediaFormat`` Transcribe takes) and recognises it (pocketsphinx, ``local_stack.recognizer``),
  in a worker thread as Transcribe runs jobs on its own; the job stays IN_PROGRESS meanwhile. It
  then writes Transcribe's documented output file (``results.transcripts``, ``items`` with
  ``start_time``/``end_time``/``confidence``, ``audio_segments``) to the job's output location.
  Media it cannot use fails the job with Transcribe's ``FailureReason`` (see ``media_failure``).

``transcript_for(job)`` decides a job's outcome and can be replaced (tests inject transcripts and
faults with it): it returns the output document, ``None`` (the job stays IN_PROGRESS),
``NO_OUTPUT`` (COMPLETED, no file) or a ``JobFailure`` (FAILED with that reason). The default is
``TRANSCRIBE``, the recogniser.

moto's Transcribe also emits no EventBridge events, and its jobs advance only when someone asks for
them (``GetTranscriptionJob``). ``finish_job`` runs a job to its end, as Transcribe does on its own,
and ``announce_job_state`` puts the documented "Transcribe Job State Change" event on the default bus
(``job_state_change`` builds the whole event, e.g. to test a rule's pattern). In the local stack,
``attach`` runs a small Transcribe clock that does both every second for every job, so the
transcription workflow's event-driven wait is resumed as in AWS (through the bus relay); it also
starts the streaming Transcribe emulator and S3's signature checks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

from .periodic import InBackground

LOG = logging.getLogger("local_stack")


@dataclass(frozen=True)
class JobFailure:
    reason: str


NO_OUTPUT: dict[str, Any] = {}  # complete the job but write no output file (a fault to test against)
TranscriptFor = Callable[[Any], "dict[str, Any] | JobFailure | None"]

# Transcribe's documented FailureReason values (API_TranscriptionJob), and the emulator's own.
UNSUPPORTED_FORMAT = "Unsupported media format"
FORMAT_MISMATCH = "The media format provided does not match the detected media format"
RATE_MISMATCH = "The sample rate provided does not match the detected sample rate"
INVALID_RATE = "Invalid sample rate for audio file"
TOO_MANY_CHANNELS = "Invalid number of channels: number of channels too large"
TOO_SHORT = "The input media file length is too small. Check the length of the file and try your request again."
NOT_ACCESSIBLE = ("The S3 URI that you provided can't be accessed. Make sure that you have read permission "
                  "and try your request again.")
MIN_MEDIA_SECONDS = 0.5
MAX_CHANNELS = 2
MEDIA_FORMATS = ("mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a")


def english_only(language: str) -> str:
    return (f"The local stack recognises English only (LanguageCode {language}); Amazon Transcribe "
            "transcribes it when deployed.")


# -- Transcribe's output document -------------------------------------------------------------------
def transcript_document(text: str, *, job_name: str = "local", seconds_per_word: float = 0.4,
                        language: str = "en-US") -> dict[str, Any]:
    """A Transcribe output file for ``text`` with evenly spaced words (tests inject it)."""
    items: list[dict[str, Any]] = []
    clock = 0.0
    for token in text.split():
        word = token.rstrip(".,!?;:")
        marks = token[len(word):]
        if word:
            items.append({"id": len(items), "start_time": f"{clock:.3f}", "end_time": f"{clock + seconds_per_word:.3f}",
                          "alternatives": [{"confidence": "0.99", "content": word}], "type": "pronunciation"})
            clock += seconds_per_word
        for mark in marks:
            items.append({"id": len(items), "alternatives": [{"confidence": "0.0", "content": mark}],
                          "type": "punctuation"})
    return {"jobName": job_name, "accountId": "123456789012", "status": "COMPLETED",
            "results": {"language_code": language, "transcripts": [{"transcript": text}], "items": items}}


def recognised_document(results: Any, *, job_name: str, language: str,
                        account: str = "123456789012") -> dict[str, Any]:
    """Transcribe's output file for recognised utterances (``recognizer.Result``, final ones)."""
    items: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    for result in results:
        if not result.words:
            continue
        ids = []
        for word in result.words:
            ids.append(len(items))
            items.append({"id": len(items), "type": "pronunciation", "start_time": f"{word.start:.3f}",
                          "end_time": f"{word.end:.3f}",
                          "alternatives": [{"confidence": f"{word.confidence:.3f}", "content": word.text}]})
        ids.append(len(items))
        items.append({"id": len(items), "type": "punctuation", "alternatives": [{"confidence": "0.0", "content": "."}]})
        segments.append({"id": len(segments), "transcript": result.transcript, "start_time": f"{result.start:.3f}",
                         "end_time": f"{result.end:.3f}", "items": ids})
    text = " ".join(s["transcript"] for s in segments)
    return {"jobName": job_name, "accountId": account, "status": "COMPLETED",
            "results": {"language_code": language, "transcripts": [{"transcript": text}], "items": items,
                        "audio_segments": segments}}


# -- the recognising Transcribe --------------------------------------------------------------------
@dataclass(frozen=True)
class JobMedia:
    """What a job asked for, read when it started (moto fills in defaults once it runs)."""

    account: str
    job_name: str
    media_uri: str
    media_format: str | None
    sample_rate: int | None
    language: str


def _s3_location(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of ``s3://bucket/key`` or a path-style ``https://s3.<region>.amazonaws.com/bucket/key``."""
    parts = urlsplit(uri)
    if parts.scheme == "s3" and parts.netloc and parts.path.strip("/"):
        return parts.netloc, unquote(parts.path.lstrip("/"))
    if parts.scheme == "https" and parts.netloc.startswith("s3") and parts.path.count("/") >= 2:
        bucket, _, key = parts.path.lstrip("/").partition("/")
        return bucket, unquote(key)
    return None


def _read_media(media: JobMedia) -> bytes | None:
    from moto.s3.models import s3_backends

    location = _s3_location(media.media_uri)
    if location is None:
        return None
    try:
        found = s3_backends[media.account]["aws"].get_object(*location)
    except Exception:  # moto raises its own S3 errors: a missing bucket or key is "can't be accessed"
        return None
    return bytes(found.value) if found is not None else None


def media_failure(media: JobMedia, decoded: Any) -> str | None:
    """Transcribe's FailureReason for decoded media it would refuse, or None."""
    if media.media_format and media.media_format not in decoded.media_formats:
        return FORMAT_MISMATCH
    if decoded.channels > MAX_CHANNELS:
        return TOO_MANY_CHANNELS
    if media.sample_rate and media.sample_rate != decoded.source_rate:
        return RATE_MISMATCH
    if decoded.seconds < MIN_MEDIA_SECONDS:
        return TOO_SHORT
    return None


def recognise_job(media: JobMedia) -> dict[str, Any] | JobFailure:
    """One job's outcome: its output document, or why it failed."""
    from .audio import UndecodableAudio, decode
    from .recognizer import recogniser

    if media.media_format and media.media_format not in MEDIA_FORMATS:
        return JobFailure(UNSUPPORTED_FORMAT)
    if media.sample_rate is not None and not 8000 <= media.sample_rate <= 48000:
        return JobFailure(INVALID_RATE)
    if not media.language.lower().startswith("en"):
        return JobFailure(english_only(media.language))
    data = _read_media(media)
    if data is None:
        return JobFailure(NOT_ACCESSIBLE)
    try:
        decoded = decode(data)
    except UndecodableAudio:
        from parley.speech.transcription.audio import detect_format

        found = detect_format(data[:64])
        return JobFailure(FORMAT_MISMATCH if found and media.media_format and found != media.media_format
                          else UNSUPPORTED_FORMAT)
    reason = media_failure(media, decoded)
    if reason:
        return JobFailure(reason)
    results = recogniser().transcribe(decoded.pcm)
    return recognised_document(results, job_name=media.job_name, language=media.language, account=media.account)


class TranscribeEngine:
    """``transcript_for`` that recognises each job's media on a worker thread (one job at a time):
    the job stays IN_PROGRESS until its outcome is ready, as a real job does while it runs."""

    def __init__(self, work: Callable[[JobMedia], dict[str, Any] | JobFailure] = recognise_job) -> None:
        self.work = work
        self._jobs: dict[tuple[Any, ...], tuple[JobMedia, Future[dict[str, Any] | JobFailure]]] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[JobMedia, Future[Any]]] = queue.Queue()
        self._worker: threading.Thread | None = None

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="transcribe-jobs", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            media, future = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self.work(media))
            except Exception as exc:  # the job fails as Transcribe's would, with a reason to read
                LOG.exception("Transcribe emulation failed on %s", media.job_name)
                future.set_result(JobFailure(f"Internal failure in the local stack's recogniser: {exc}"))

    @staticmethod
    def media_of(job: Any) -> JobMedia:
        requested = getattr(job, "_parley_requested", None) or (job.media_format, job.media_sample_rate_hertz)
        return JobMedia(account=job._account_id, job_name=job.transcription_job_name,
                        media_uri=str((job.media or {}).get("MediaFileUri", "")), media_format=requested[0],
                        sample_rate=requested[1], language=str(job.language_code or "en-US"))

    @staticmethod
    def _key(job: Any) -> tuple[Any, ...]:
        return job._account_id, job._region_name, job.transcription_job_name, job.creation_time

    def submit(self, job: Any) -> Future[dict[str, Any] | JobFailure]:
        with self._lock:
            entry = self._jobs.get(self._key(job))
            if entry is None:
                future: Future[dict[str, Any] | JobFailure] = Future()
                media = self.media_of(job)
                entry = (media, future)
                self._jobs[self._key(job)] = entry
                self._ensure_worker()
                self._queue.put(entry)
            return entry[1]

    def __call__(self, job: Any) -> dict[str, Any] | JobFailure | None:
        future = self.submit(job)
        if not future.done():
            return None
        with self._lock:
            self._jobs.pop(self._key(job), None)
        return future.result()

    def wait(self, job: Any, timeout: float) -> None:
        """Block until the job's recognition (if one is under way) is done."""
        with self._lock:
            entry = self._jobs.get(self._key(job))
        if entry is not None:
            with contextlib.suppress(TimeoutError):
                entry[1].result(timeout=timeout)


TRANSCRIBE = TranscribeEngine()


def _write_output(job: Any, document: dict[str, Any]) -> None:
    from moto.s3.models import s3_backends

    key = job.output_key or f"{job.transcription_job_name}.json"
    s3_backends[job._account_id]["aws"].put_object(job._output_bucket_name, key, json.dumps(document).encode())


# -- Polly ---------------------------------------------------------------------------------------------
OUTPUT_FORMATS = {"mp3": "audio/mpeg", "ogg_vorbis": "audio/ogg", "pcm": "audio/pcm"}
SAMPLE_RATES = {"mp3": (8000, 16000, 22050, 24000), "ogg_vorbis": (8000, 16000, 22050, 24000), "pcm": (8000, 16000)}
MP3_KBPS = {8000: 24, 16000: 32, 22050: 48, 24000: 48}


def default_sample_rate(output_format: str, engine: str) -> int:
    """Polly's default SampleRate for a format and engine (SynthesizeSpeech's documentation)."""
    if output_format == "pcm":
        return 16000
    return 24000 if engine in ("neural", "long-form", "generative") else 22050


def polly_audio(text: str, voice_id: str, language_code: str | None, output_format: str, sample_rate: int, *,
                ssml: bool = False) -> bytes:
    """What Polly answers: ``text`` spoken by the voice's espeak voice, in ``output_format``."""
    from . import audio, voices

    pcm = voices.synthesize(text, voices.espeak_voice(voice_id, language_code), ssml=ssml)
    if sample_rate != voices.ESPEAK_RATE:
        pcm = audio.resample(pcm, voices.ESPEAK_RATE, sample_rate)
    if output_format == "mp3":
        return audio.mp3(pcm, sample_rate, kbps=MP3_KBPS[sample_rate])
    if output_format == "ogg_vorbis":
        return audio.ogg_vorbis(pcm, sample_rate)
    return pcm


@contextlib.contextmanager
def emulate_speech(transcript_for: TranscriptFor | None = None, *, speak: bool = True) -> Iterator[None]:
    """Patch moto's Polly and Transcribe as the module docstring says. ``transcript_for`` defaults to
    the recogniser (``TRANSCRIBE``); ``speak=False`` keeps moto's silent audio (tests about voices
    and engines only)."""
    from moto.polly.responses import PollyResponse
    from moto.transcribe.models import FakeTranscriptionJob

    from parley.speech.voices import POLLY_VOICES

    decide = transcript_for or TRANSCRIBE
    original_synthesize = PollyResponse.speech
    original_advance = FakeTranscriptionJob.advance

    def synthesize_speech(self: Any) -> Any:
        body = json.loads(self.body or "{}")
        voice = POLLY_VOICES.get(str(body.get("VoiceId")))
        engine = str(body.get("Engine", "standard"))
        if voice is not None and engine not in voice.engines:
            return self._error("EngineNotSupportedException",
                               f"This voice does not support the selected engine: {engine}")
        output_format = str(body.get("OutputFormat", ""))
        rate = body.get("SampleRate")
        if rate is not None and output_format in SAMPLE_RATES and (
                not str(rate).isdigit() or int(rate) not in SAMPLE_RATES[output_format]):
            return self._error("InvalidSampleRateException", "The specified sample rate is not valid.")
        self._json = {k: v for k, v in body.items() if k != "SampleRate"}  # moto's own check lacks 24000
        result = original_synthesize(self)
        if not speak or not isinstance(result, tuple) or output_format not in OUTPUT_FORMATS \
                or int(result[1].get("status", 200)) != 200:
            return result
        ssml = body.get("TextType") == "ssml"
        text = str(body.get("Text", ""))
        sample_rate = int(rate) if rate is not None else default_sample_rate(output_format, engine)
        from .voices import billed_characters

        audio_bytes = polly_audio(text, str(body.get("VoiceId")), voice.language_code if voice else
                                  body.get("LanguageCode"), output_format, sample_rate, ssml=ssml)
        return audio_bytes, {"Content-Type": OUTPUT_FORMATS[output_format],
                             "x-amzn-RequestCharacters": str(billed_characters(text, ssml=ssml))}

    def advance(job: Any) -> None:
        if job.status in (None, "QUEUED") and not hasattr(job, "_parley_requested"):
            job._parley_requested = (job.media_format, job.media_sample_rate_hertz)  # before moto's defaults
        if job.status != "IN_PROGRESS":
            original_advance(job)
            return
        outcome = decide(job)
        if outcome is None:  # still transcribing
            return
        if isinstance(outcome, JobFailure):
            job._status = "FAILED"
            job.failure_reason = outcome.reason
            return
        original_advance(job)
        if job.status == "COMPLETED" and job._output_bucket_name and outcome is not NO_OUTPUT:
            _write_output(job, outcome)

    original_response = FakeTranscriptionJob.response_object

    def response_object(job: Any, response_type: str) -> Any:
        found = original_response(job, response_type)
        if job.failure_reason and job._status == "FAILED":  # moto's GET omits the documented FailureReason
            found.get("TranscriptionJob", found)["FailureReason"] = job.failure_reason
        return found

    with mock.patch.object(PollyResponse, "speech", synthesize_speech), \
            mock.patch.object(FakeTranscriptionJob, "advance", advance), \
            mock.patch.object(FakeTranscriptionJob, "response_object", response_object):
        yield


# -- Transcribe's job-state events (moto emits none) ------------------------------------------------
TRANSCRIBE_EVENT_SOURCE = "aws.transcribe"
TRANSCRIBE_EVENT_TYPE = "Transcribe Job State Change"
FINAL_STATES = ("COMPLETED", "FAILED")


def _job_detail(job_name: str, status: str, failure_reason: str | None) -> dict[str, str]:
    detail = {"TranscriptionJobName": job_name, "TranscriptionJobStatus": status}
    if failure_reason:
        detail["FailureReason"] = failure_reason
    return detail


def job_state_change(job_name: str, status: str, failure_reason: str | None = None, *,
                     account: str = "123456789012", region: str = "us-east-1") -> dict[str, Any]:
    """The event Transcribe puts on the default bus when a job changes state (documented shape)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": TRANSCRIBE_EVENT_TYPE,
            "source": TRANSCRIBE_EVENT_SOURCE, "account": account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": region, "resources": [],
            "detail": _job_detail(job_name, status, failure_reason)}


def _transcribe_backend(account: str, region: str) -> Any:
    from moto.transcribe.models import transcribe_backends

    return transcribe_backends[account][region]


def finish_job(job_name: str, *, account: str = "123456789012", region: str = "us-east-1",
               max_steps: int = 10, timeout: float = 120.0) -> str:
    """Run an emulated job on (QUEUED -> IN_PROGRESS -> its outcome) as Transcribe does by itself,
    waiting for its recognition when it is the recogniser's; returns its status then (IN_PROGRESS
    if ``transcript_for`` never lets it finish)."""
    job = _transcribe_backend(account, region).transcriptions[job_name]
    for _ in range(max_steps):
        if job.status in FINAL_STATES:
            break
        job.advance()
        if job.status == "IN_PROGRESS":
            TRANSCRIBE.wait(job, timeout)
    return str(job.status)


def announce_job_state(job_name: str, status: str, failure_reason: str | None = None, *,
                       account: str = "123456789012", region: str = "us-east-1") -> None:
    """Put Transcribe's job-state event on the emulator's default bus (its rules match it there)."""
    from moto.events.models import events_backends

    entry = {"Source": TRANSCRIBE_EVENT_SOURCE, "DetailType": TRANSCRIBE_EVENT_TYPE,
             "Detail": json.dumps(_job_detail(job_name, status, failure_reason))}
    result = events_backends[account][region].put_events([entry])
    if result and result[0].get("ErrorCode"):
        raise RuntimeError(f"Could not put the Transcribe event: {result[0]}")


class TranscribeClock(InBackground):
    """The local stack's Transcribe: every ``interval`` seconds, advance every unfinished job one
    step and announce each job that has reached COMPLETED or FAILED once (whoever advanced it)."""

    name = "The Transcribe clock"

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.announced: set[str] = set()

    def tick(self) -> list[str]:
        announced = []
        for name, job in list(_transcribe_backend(self.account, self.region).transcriptions.items()):
            if job.status not in FINAL_STATES:
                job.advance()
            if job.status in FINAL_STATES and name not in self.announced:
                self.announced.add(name)
                announce_job_state(name, str(job.status), job.failure_reason or None,
                                   account=self.account, region=self.region)
                announced.append(name)
        return announced

    def round(self) -> list[str]:  # in the background (the local stack)
        return self.tick()


def attach(local: Any) -> None:
    """Hook for local_stack.server.LocalStack, for as long as the local stack runs: Polly speaks,
    Transcribe recognises its jobs, runs them by itself and announces them on the default bus;
    the streaming Transcribe emulator listens (its ws:// URL is what the stream-URL function hands
    out); S3 checks presigned uploads' signatures; and the emulated services are safe under concurrent
    requests (``local_stack.concurrency``)."""
    from . import concurrency, s3_signatures, transcribe_streaming
    from .recognizer import recogniser

    resources = contextlib.ExitStack()
    concurrency.attach(local, resources)
    resources.enter_context(emulate_speech())
    clock = TranscribeClock(local.stack.account, local.stack.region).start()
    resources.callback(clock.stop)
    # Load the speech model now, in the background, so the first recording does not wait for it.
    threading.Thread(target=recogniser().warm_up, name="recogniser-warm-up", daemon=True).start()
    s3_signatures.attach(local, resources)
    transcribe_streaming.attach(local, resources)
    local.on_stop(resources.close)
