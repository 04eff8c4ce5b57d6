"""A batch of transcriptions, each with a fault injected at a different step: whatever fails,
every transcription ends completed or failed with a reason, and nothing is left behind."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from local_stack.speech import NO_OUTPUT, JobFailure
from tests.conftest import WEBM, ApiClient, FakeTranscribe, assert_error
from tests.test_transcription_workflow import fixture, leftovers, submit


@contextlib.contextmanager
def _s3_fails(method: str, key_part: str, times: int) -> Iterator[None]:
    """moto's S3 answers InternalError to ``method`` on keys containing ``key_part``, ``times`` times."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    original = getattr(S3Backend, method)
    left = {"n": times}

    def failing(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        if key_part in key_name and left["n"] > 0:
            left["n"] -= 1
            raise S3ClientError("InternalError", "We encountered an internal error. Please try again.")
        return original(self, bucket_name, key_name, *args, **kwargs)

    with mock.patch.object(S3Backend, method, failing):
        yield


@contextlib.contextmanager
def _start_job_throttled(times: int) -> Iterator[None]:
    from moto.core.exceptions import JsonRESTError
    from moto.transcribe.models import TranscribeBackend

    original = TranscribeBackend.start_transcription_job
    left = {"n": times}

    def throttled(self: Any, *args: Any, **kwargs: Any) -> Any:
        if left["n"] > 0:
            left["n"] -= 1
            raise JsonRESTError("LimitExceededException", "Rate exceeded")  # Transcribe's throttling error
        return original(self, *args, **kwargs)

    with mock.patch.object(TranscribeBackend, "start_transcription_job", throttled):
        yield


Fault = tuple[str, Callable[[FakeTranscribe], contextlib.AbstractContextManager[Any]], str]

FAULTS: list[Fault] = [
    ("transcript file missing", lambda t: _outcome(t, NO_OUTPUT), "failed"),
    ("transcript file unreadable", lambda _t: _s3_fails("get_object", "transcripts/", 99), "failed"),
    ("transcript read fails once", lambda _t: _s3_fails("get_object", "transcripts/", 1), "completed"),
    ("job failed", lambda t: _outcome(t, JobFailure("The audio is too short to transcribe.")), "failed"),
    ("start throttled twice", lambda _t: _start_job_throttled(2), "completed"),
    ("audio delete fails once", lambda _t: _s3_fails("delete_object", "audio/", 1), "completed"),
    ("transcript delete fails once", lambda _t: _s3_fails("delete_object", "transcripts/", 1), "completed"),
    ("no fault", lambda t: _outcome(t, fixture("greeting")), "completed"),
]


@contextlib.contextmanager
def _outcome(fake: FakeTranscribe, outcome: Any) -> Iterator[None]:
    fake.outcome = outcome
    yield
    fake.outcome = fixture("greeting")


def test_a_batch_of_faulty_runs_leaves_nothing_behind(api: ApiClient, workflows: Any, transcribe: FakeTranscribe,
                                                      aws: dict[str, str]) -> None:
    outcomes = {}
    for name, inject, _expected in FAULTS:
        with inject(transcribe):
            transcription_id, result = submit(api, workflows)
        body = api.get(f"/transcriptions/{transcription_id}").json()
        outcomes[name] = (body["status"], result.status)
        if body["status"] == "failed":
            assert body["reason"]["code"] and body["reason"]["message"], (name, body)

    assert {name: status for name, (status, _) in outcomes.items()} == {n: e for n, _, e in FAULTS}
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}


def test_s3_failing_on_upload_is_a_503_and_starts_nothing(api: ApiClient, workflows: Any, aws: dict[str, str]
                                                          ) -> None:
    import base64

    with _s3_fails("put_object", "audio/", 99):
        response = api.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode()})
    assert_error(response, 503, response.json()["error"]["code"])
    assert workflows.executions("TranscriptionStateMachine") == []
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}
