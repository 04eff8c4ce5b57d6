"""The emulated Polly and Transcribe (local_stack.speech) in moto: real audio out, real recognition in.

Polly: valid MP3 for every accent and gender, with no ``espeak-ng`` program anywhere on PATH (the
library comes from the espeakng-loader wheel); Ogg Vorbis and PCM with their Content-Type; Polly's
sample-rate rules. Transcribe: a TTS recording through the transcription workflow comes back with the
spoken words and timings inside the audio; media Transcribe would refuse fails the job with its
FailureReason, and the workflow still cleans up.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_stack import audio, voices
from local_stack.lambdas import FunctionRunner
from local_stack.speech import (
    FORMAT_MISMATCH,
    NOT_ACCESSIBLE,
    TOO_SHORT,
    UNSUPPORTED_FORMAT,
    JobFailure,
    JobMedia,
    emulate_speech,
    recognise_job,
)
from local_stack.template import Stack
from parley.speech.voices import POLLY_VOICES, choose_voice
from tests.conftest import ApiClient, test_workflows_of
from tests.speech_samples import SENTENCES, word_error_rate

MACHINE = "TranscriptionStateMachine"
ACCENTS_AND_GENDERS = [(accent, gender) for accent in ("US", "UK", "AU", "IN") for gender in ("female", "male")]


@pytest.fixture
def no_espeak_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holds nothing but an empty folder: no espeak-ng (nor anything else) to run."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("espeak-ng") is None and shutil.which("espeak") is None


@pytest.fixture
def recognising_workflows(stack: Stack, runner: FunctionRunner, aws: dict[str, str]) -> Iterator[Any]:
    """The workflows, polling Transcribe every second while the recogniser works (it takes seconds)."""
    with test_workflows_of(stack, runner, PollIntervalSeconds="1", PollMaxIntervalSeconds="1",
                           MaxPolls="300").installed() as installed:
        yield installed


@pytest.fixture
def speech(aws: dict[str, str]) -> Iterator[None]:
    with emulate_speech():
        yield


def mp3_frame_sync(data: bytes) -> bool:
    return len(data) > 4 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0


@pytest.mark.parametrize(("accent", "gender"), ACCENTS_AND_GENDERS)
def test_every_accent_and_gender_speaks_valid_mp3_without_an_espeak_program(
        api: ApiClient, speech: None, no_espeak_program: None, accent: str, gender: str) -> None:
    text = "Nice to meet you. Where would you like to travel next summer?"
    response = api.post("/speech", {"text": text, "accent": accent, "gender": gender})
    assert response.status == 200, response.body
    body = response.json()
    mp3 = base64.b64decode(body["audio"])
    assert body["contentType"] == "audio/mpeg" and mp3_frame_sync(mp3)
    decoded = audio.decode(mp3)
    assert decoded.media_formats == {"mp3"}
    words = len(text.split())
    assert words / 4.0 < decoded.seconds < words / 1.0  # between 60 and 240 words a minute
    rate = 24000 if choose_voice(accent, gender).engine == "neural" else 22050  # Polly's defaults
    assert decoded.source_rate == rate


def test_each_polly_voice_has_its_own_espeak_voice() -> None:
    used = {choose_voice(accent, gender).voice_id for accent, gender in ACCENTS_AND_GENDERS}
    assert used <= set(voices.VOICES) and set(POLLY_VOICES) <= set(voices.VOICES)
    assert len({voices.VOICES[v] for v in POLLY_VOICES}) == len(POLLY_VOICES)  # no two sound alike


@pytest.mark.parametrize(("output_format", "content_type", "magic"), [
    ("ogg_vorbis", "audio/ogg", b"OggS"), ("mp3", "audio/mpeg", None), ("pcm", "audio/pcm", None)])
def test_polly_output_formats_have_their_content_type(speech: None, output_format: str, content_type: str,
                                                      magic: bytes | None) -> None:
    answer = boto3.client("polly").synthesize_speech(Text="Good morning, everyone.", OutputFormat=output_format,
                                                     VoiceId="Matthew", Engine="standard")
    data = answer["AudioStream"].read()
    assert answer["ContentType"] == content_type and answer["RequestCharacters"] == len("Good morning, everyone.")
    if magic:
        assert data.startswith(magic) and audio.decode(data).seconds > 0.8
    elif output_format == "pcm":  # 16-bit mono at Polly's 16 kHz default
        assert len(data) % 2 == 0 and 0.8 < len(data) / 32000 < 4
    else:
        assert mp3_frame_sync(data)


def test_polly_sample_rates_follow_the_format(speech: None) -> None:
    polly = boto3.client("polly")
    answer = polly.synthesize_speech(Text="Hello.", OutputFormat="pcm", VoiceId="Joanna", SampleRate="8000")
    assert answer["ContentType"] == "audio/pcm"
    with pytest.raises(polly.exceptions.InvalidSampleRateException):
        polly.synthesize_speech(Text="Hello.", OutputFormat="pcm", VoiceId="Joanna", SampleRate="22050")
    mp3 = polly.synthesize_speech(Text="Hello.", OutputFormat="mp3", VoiceId="Joanna", Engine="neural",
                                  SampleRate="24000")["AudioStream"].read()
    assert audio.decode(mp3).source_rate == 24000


# -- Transcribe ------------------------------------------------------------------------------------
def media(uri: str = "s3://bucket/missing.wav", fmt: str | None = "wav", language: str = "en-US") -> JobMedia:
    return JobMedia(account="123456789012", job_name="job", media_uri=uri, media_format=fmt, sample_rate=None,
                    language=language)


def put(aws: dict[str, str], key: str, data: bytes) -> str:
    bucket = aws["AudioBucket"]
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def test_media_transcribe_would_refuse_fails_the_job_with_its_reason(aws: dict[str, str]) -> None:
    tone = audio.wav(b"\x10\x00" * 16000, 16000)  # one second of a constant level
    assert recognise_job(media()) == JobFailure(NOT_ACCESSIBLE)
    assert recognise_job(media(put(aws, "a.webm", b"\x1a\x45\xdf\xa3" + bytes(200)), "webm")) == \
        JobFailure(UNSUPPORTED_FORMAT)
    assert recognise_job(media(put(aws, "b.wav", tone), "mp3")) == JobFailure(FORMAT_MISMATCH)
    assert recognise_job(media(put(aws, "c.wav", audio.wav(b"\x00\x00" * 3000, 16000)))) == JobFailure(TOO_SHORT)
    refused = recognise_job(media(put(aws, "d.wav", tone), language="ko-KR"))
    assert isinstance(refused, JobFailure) and "English only" in refused.reason
    silent = recognise_job(media(put(aws, "e.wav", audio.wav(b"\x00\x00" * 16000, 16000))))
    assert isinstance(silent, dict) and silent["results"]["transcripts"] == [{"transcript": ""}]


def _submit(api: ApiClient, workflows: Any, recording: bytes) -> Any:
    response = api.post("/transcriptions", {"audio": base64.b64encode(recording).decode()})
    assert response.status == 202, response.body
    transcription_id = response.json()["transcriptionId"]
    arn = next(a for a in workflows.executions(MACHINE) if a.endswith(transcription_id))
    workflows.wait(arn, timeout=180)
    return api.get(f"/transcriptions/{transcription_id}").json()


def test_a_tts_recording_through_the_workflow_comes_back_with_its_words(
        api: ApiClient, recognising_workflows: Any, speech: None) -> None:
    workflows = recognising_workflows
    spoken = SENTENCES[2]
    recording = audio.mp3(voices.synthesize(spoken, voices.VOICES["Joanna"]), voices.ESPEAK_RATE)
    seconds = audio.decode(recording).seconds
    done = _submit(api, workflows, recording)
    assert done["status"] == "completed", done
    assert word_error_rate(spoken, done["text"]) <= 0.35, done["text"]
    assert all(0 <= w["start"] < w["end"] <= seconds + 0.05 for w in done["words"])
    assert abs(done["durationSeconds"] - max(w["end"] for w in done["words"])) < 1e-6


def test_an_undecodable_recording_fails_with_transcribes_reason_and_is_cleaned_up(
        api: ApiClient, recognising_workflows: Any, speech: None, aws: dict[str, str]) -> None:
    workflows = recognising_workflows
    done = _submit(api, workflows, b"\x1a\x45\xdf\xa3" + bytes(400))  # a WebM header, then nothing
    assert done["status"] == "failed" and UNSUPPORTED_FORMAT in done["reason"]["message"], done
    bucket = aws["AudioBucket"]
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert boto3.client("transcribe").list_transcription_jobs()["TranscriptionJobSummaries"] == []
