"""Speech services in the emulator: Polly that speaks, Transcribe that writes its output file.

moto's Polly returns 8 NUL bytes for any voice and engine, and moto's Transcribe completes jobs
without writing a transcript. ``emulate_speech()`` (a context manager, active inside ``mock_aws``)
makes both behave like the services for our code:

- Polly refuses an engine the voice does not support (Polly's ``EngineNotSupportedException``,
  using the published table in ``parley.speech.POLLY_VOICES``), and - when ``espeak-ng`` is on
  PATH - answers with real, audible speech: espeak-ng's WAV, labelled ``audio/wav`` (there is no MP3
  encoder here; browsers play WAV). Without espeak-ng the audio stays moto's 8 bytes.
- Transcribe, when a job reaches COMPLETED, writes an output file in Transcribe's documented
  format to the job's ``OutputBucketName``/``OutputKey`` (``transcript_for(job)`` decides the
  document; by default a canned sentence, since nothing here recognises speech). ``transcript_for``
  may also return ``None`` (the job stays IN_PROGRESS), ``NO_OUTPUT`` (COMPLETED, no file) or a
  ``JobFailure`` (the job FAILS with that ``FailureReason``).

moto's Transcribe also emits no EventBridge events, and its jobs advance only when someone asks for
them (``GetTranscriptionJob``). ``finish_job`` runs a job to its end, as Transcribe does on its own,
and ``announce_job_state`` puts the documented "Transcribe Job State Change" event on the default bus
(``job_state_change`` builds the whole event, e.g. to test a rule's pattern). In the local stack,
``attach`` runs a small Transcribe clock that does both every second for every job, so the
transcription workflow's event-driven wait is resumed as in AWS (through the bus relay).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from .periodic import Periodic

CANNED_TEXT = "This is the local stack's transcript. Nothing here recognises speech, so it is always the same."


@dataclass(frozen=True)
class JobFailure:
    reason: str


NO_OUTPUT: dict[str, Any] = {}  # complete the job but write no output file (a fault to test against)
TranscriptFor = Callable[[Any], "dict[str, Any] | JobFailure | None"]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_wav(text: str, *, voice: str = "en-us", timeout: float = 10) -> bytes:
    """espeak-ng's WAV for ``text`` (about 30 ms for a sentence)."""
    binary = shutil.which("espeak-ng") or "espeak-ng"
    result = subprocess.run([binary, "-v", voice, "--stdout", text], capture_output=True, timeout=timeout, check=True)
    return result.stdout


_ESPEAK_VOICES = {"en-US": "en-us", "en-GB": "en-gb", "en-AU": "en-gb", "en-IN": "en-gb"}  # closest espeak voices


def transcript_document(text: str, *, job_name: str = "local", seconds_per_word: float = 0.4,
                        language: str = "en-US") -> dict[str, Any]:
    """A Transcribe output file (documented batch format) for ``text`` with evenly spaced words."""
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


def canned_transcript(job: Any) -> dict[str, Any]:
    return transcript_document(CANNED_TEXT, job_name=job.transcription_job_name)


def _write_output(job: Any, document: dict[str, Any]) -> None:
    from moto.s3.models import s3_backends

    key = job.output_key or f"{job.transcription_job_name}.json"
    s3_backends[job._account_id]["aws"].put_object(job._output_bucket_name, key, json.dumps(document).encode())


@contextlib.contextmanager
def emulate_speech(transcript_for: TranscriptFor = canned_transcript, *, speak: bool | None = None) -> Iterator[None]:
    """Patch moto's Polly and Transcribe as the module docstring says. ``speak`` defaults to
    whether espeak-ng is installed; tests pass ``speak=False`` to stay independent of it."""
    from moto.polly.responses import PollyResponse
    from moto.transcribe.models import FakeTranscriptionJob

    from parley.speech import POLLY_VOICES

    speak = espeak_available() if speak is None else speak
    original_synthesize = PollyResponse.speech
    original_advance = FakeTranscriptionJob.advance

    def synthesize_speech(self: Any) -> Any:
        body = json.loads(self.body or "{}")
        voice = POLLY_VOICES.get(str(body.get("VoiceId")))
        engine = str(body.get("Engine", "standard"))
        if voice is not None and engine not in voice.engines:
            return self._error("EngineNotSupportedException",
                               f"This voice does not support the selected engine: {engine}")
        result = original_synthesize(self)
        if not speak or not isinstance(result, tuple) or body.get("OutputFormat") != "mp3":
            return result
        language = voice.language_code if voice else "en-US"
        audio = espeak_wav(str(body.get("Text", "")), voice=_ESPEAK_VOICES.get(language, "en-us"))
        return audio, {"Content-Type": "audio/wav"}

    def advance(job: Any) -> None:
        if job.status != "IN_PROGRESS":
            original_advance(job)
            return
        outcome = transcript_for(job)
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
               max_steps: int = 10) -> str:
    """Run an emulated job on (QUEUED -> IN_PROGRESS -> its outcome) as Transcribe does by itself;
    returns its status then (IN_PROGRESS if ``transcript_for`` never lets it finish)."""
    job = _transcribe_backend(account, region).transcriptions[job_name]
    for _ in range(max_steps):
        if job.status in FINAL_STATES:
            break
        job.advance()
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


class TranscribeClock:
    """The local stack's Transcribe: every ``interval`` seconds, advance every unfinished job one
    step and announce each job that has reached COMPLETED or FAILED once (whoever advanced it)."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.announced: set[str] = set()
        self._background = Periodic("The Transcribe clock", self.tick)

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

    def start(self, *, interval: float = 1.0) -> TranscribeClock:
        self._background.start(interval)
        return self

    def stop(self) -> None:
        self._background.stop()


def attach(local: Any) -> None:
    """Hook for local_stack.server.LocalStack: Polly speaks (espeak-ng when installed), Transcribe
    writes a canned transcript, runs its jobs by itself and announces them on the default bus, for
    as long as the local stack runs."""
    resources = contextlib.ExitStack()
    resources.enter_context(emulate_speech())
    clock = TranscribeClock(local.stack.account, local.stack.region).start()
    resources.callback(clock.stop)
    local.on_stop(resources.close)
