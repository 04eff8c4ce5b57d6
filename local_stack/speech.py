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
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

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


def attach(local: Any) -> None:
    """Hook for local_stack.server.LocalStack: Polly speaks (espeak-ng when installed), Transcribe
    writes a canned transcript, for as long as the local stack runs."""
    resources = contextlib.ExitStack()
    resources.enter_context(emulate_speech())
    local.on_stop(resources.close)
