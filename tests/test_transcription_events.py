"""The transcription workflow's event-driven wait, executing on moto.

After StartJob the execution stores its task token under the job's name and waits
(``aws-sdk:dynamodb:putItem.waitForTaskToken``); Transcribe's "Transcribe Job State Change" event on
the default bus -> the template's rule -> the job-events function -> ``SendTaskSuccess``. moto's
Transcribe emits no events and runs a job only when asked, so each test plays Transcribe:
``finish_job`` runs the job to its end, ``announce_job_state`` puts the documented event on the default
bus, and ``bus.pump()`` delivers it through the template's rule (local_stack/bus.py).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local_stack.speech import JobFailure, announce_job_state, finish_job, job_state_change
from parley.data import keys
from parley.speech.transcription.objects import job_name
from tests.conftest import WEBM, ApiClient, FakeTranscribe, test_workflows_of
from tests.test_transcription_workflow import bus_events, leftovers, rule_matches

MACHINE = "TranscriptionStateMachine"
FUNCTION = "TranscriptionJobEventsFunction"
STAGE = "test"
ULID = "01KAQZ4M7Q0W4V9Y2T3X5B6C8D"
EVENT_PATH = ["Prepare", "StartJob", "WaitForJobEvent", "EventSaysDone?", "Collect", "DeleteAudio",
              "DeleteTranscript", "DeleteJob", "Publish", "Finished?", "Done"]


def _installed(stack: Any, runner: Any, wait_seconds: str) -> Any:
    return test_workflows_of(stack, runner, EventWaitSeconds=wait_seconds)


@pytest.fixture
def waiting(stack: Any, runner: Any, aws: dict[str, str]) -> Iterator[Any]:
    """The state machines with an event wait long enough that only an event ends it in a test."""
    with _installed(stack, runner, "30").installed() as installed:
        yield installed


@pytest.fixture
def short_wait(stack: Any, runner: Any, aws: dict[str, str]) -> Iterator[Any]:
    """The state machines with a 1 s event wait: a lost event hands over to the poll quickly."""
    with _installed(stack, runner, "1").installed() as installed:
        yield installed



def submit(api: ApiClient, workflows: Any) -> tuple[str, str, str]:
    """POST /transcriptions; (transcription id, Transcribe job name, execution ARN)."""
    response = api.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode()})
    assert response.status == 202, response.body
    transcription_id = response.json()["transcriptionId"]
    arn = next(a for a in workflows.executions(MACHINE) if a.endswith(transcription_id))
    return transcription_id, job_name(STAGE, transcription_id), arn


def token_item(table: str, job: str) -> dict[str, Any] | None:
    key = {"PK": keys.transcribe_job_pk(job), "SK": keys.JOB_WAIT_SK}
    return boto3.resource("dynamodb").Table(table).get_item(Key=key, ConsistentRead=True).get("Item")


def stored_token(workflows: Any, arn: str, table: str, job: str, *, timeout: float = 60) -> dict[str, Any]:
    """The task token item, once the execution has stored it (checked every 5 ms, bounded)."""
    deadline = time.monotonic() + timeout
    while (item := token_item(table, job)) is None:
        assert time.monotonic() < deadline, f"no task token stored; entered {workflows.states_entered(arn)}"
        time.sleep(0.005)
    return item


def job_events_deliveries(bus: Any) -> list[Any]:
    return [d for d in bus.deliveries if d.target.endswith(":transcription-job-events")
            or d.target.endswith("-transcription-job-events")]


def complete_by_event(api: ApiClient, workflows: Any, bus: Any, aws: dict[str, str]) -> tuple[str, str, Any]:
    """Submit, let Transcribe finish and announce it; (transcription id, job name, result)."""
    transcription_id, job, arn = submit(api, workflows)
    stored_token(workflows, arn, aws["Table"], job)
    assert finish_job(job) == "COMPLETED"
    announce_job_state(job, "COMPLETED")
    assert bus.pump() >= 1 and bus.failures == []
    return transcription_id, job, workflows.wait(arn)


# -- the event arrives ------------------------------------------------------------------------------
def test_the_event_resumes_the_wait_and_costs_few_transitions(
        api: ApiClient, waiting: Any, transcribe: FakeTranscribe, bus: Any, aws: dict[str, str]) -> None:
    transcription_id, job, arn = submit(api, waiting)

    token = stored_token(waiting, arn, aws["Table"], job)
    assert token["transcriptionId"] == transcription_id and token["executionArn"] == arn
    assert token["taskToken"] and time.time() < int(token["expiresAt"]) <= time.time() + 86_400 + 60
    assert finish_job(job) == "COMPLETED"
    announce_job_state(job, "COMPLETED")
    assert bus.pump() >= 1 and bus.failures == []
    result = waiting.wait(arn)

    assert result.status == "SUCCEEDED", result
    assert waiting.states_entered(arn) == EVENT_PATH  # no poll at all: 11 transitions whatever the length
    assert len(job_events_deliveries(bus)) == 1
    body = api.get(f"/transcriptions/{transcription_id}").json()
    assert body["status"] == "completed" and body["text"] == "Hi, I'm Emma. How are you today?"
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}
    assert [e["DetailType"] for e in bus_events(waiting, arn)] == ["TranscriptReady"]


def test_a_duplicate_event_is_logged_and_ignored(api: ApiClient, waiting: Any, transcribe: FakeTranscribe,
                                                  bus: Any, runner: Any, aws: dict[str, str]) -> None:
    transcription_id, job, result = complete_by_event(api, waiting, bus, aws)
    assert result.status == "SUCCEEDED"

    announce_job_state(job, "COMPLETED")  # EventBridge delivers at least once
    assert bus.pump() >= 1

    assert bus.failures == [] and len(job_events_deliveries(bus)) == 2  # delivered, and no error
    again = runner.invoke(FUNCTION, job_state_change(job, "COMPLETED"))
    assert again == {"jobName": job, "status": "COMPLETED", "outcome": "already-resumed"}
    assert len(waiting.executions(MACHINE)) == 1
    assert api.get(f"/transcriptions/{transcription_id}").json()["status"] == "completed"


# -- the event never arrives: the poll is the safety net ----------------------------------------------
def test_a_lost_event_costs_time_not_the_transcription(api: ApiClient, short_wait: Any, transcribe: FakeTranscribe,
                                                       bus: Any, runner: Any, aws: dict[str, str]) -> None:
    transcription_id, job, arn = submit(api, short_wait)

    result = short_wait.wait(arn)  # nobody announces the job

    assert result.status == "SUCCEEDED", result
    entered = short_wait.states_entered(arn)
    assert entered[:4] == ["Prepare", "StartJob", "WaitForJobEvent", "InitPoll"], entered
    assert "EventSaysDone?" not in entered and entered.count("GetJob") >= 1 and entered[-1] == "Done"
    assert result.output["eventWaitError"]["Error"] == "States.Timeout"
    assert api.get(f"/transcriptions/{transcription_id}").json()["status"] == "completed"
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}
    # The event turns up after all: its token timed out, so it is ignored.
    announce_job_state(job, "COMPLETED")
    assert bus.pump() >= 1 and bus.failures == []
    late = runner.invoke(FUNCTION, job_state_change(job, "COMPLETED"))
    assert late["outcome"] == "already-resumed"


# -- Transcribe reports FAILED ---------------------------------------------------------------------------
def test_a_failed_event_fails_the_transcription_with_the_reason_and_cleans_up(
        api: ApiClient, waiting: Any, transcribe: FakeTranscribe, bus: Any, aws: dict[str, str]) -> None:
    reason = "The media format provided does not match the detected media format."
    transcribe.outcome = JobFailure(reason)
    transcription_id, job, arn = submit(api, waiting)
    stored_token(waiting, arn, aws["Table"], job)

    assert finish_job(job) == "FAILED"
    announce_job_state(job, "FAILED", reason)
    assert bus.pump() >= 1 and bus.failures == []
    result = waiting.wait(arn)

    assert (result.status, result.error) == ("FAILED", "TranscriptionFailed")
    assert waiting.states_entered(arn) == [
        "Prepare", "StartJob", "WaitForJobEvent", "EventSaysDone?", "JobFailed", "RecordFailure", "WhatToClean?",
        "DeleteAudio", "DeleteTranscript", "DeleteJob", "Publish", "Finished?", "TranscriptionFailed"]
    body = api.get(f"/transcriptions/{transcription_id}").json()
    assert body["status"] == "failed" and body["reason"]["code"] == "TranscriptionJobFailed"
    assert reason in body["reason"]["message"]
    assert leftovers(aws["AudioBucket"]) == {"objects": [], "jobs": []}
    assert [e["DetailType"] for e in bus_events(waiting, arn)] == ["TranscriptionFailed"]


# -- the rule and the handler take only our jobs' final states -----------------------------------------
def _job_rule_pattern(stack: Any) -> dict[str, Any]:
    event = stack.resolve(stack.resources[FUNCTION]["Properties"]["Events"]["TranscribeJobStateChange"])
    return dict(event["Properties"]["Pattern"])


@pytest.mark.parametrize(("event", "matches"), [
    (job_state_change(f"parley-{STAGE}-{ULID}", "COMPLETED"), True),
    (job_state_change(f"parley-{STAGE}-{ULID}", "FAILED", "The media format provided does not match."), True),
    (job_state_change(f"parley-{STAGE}-{ULID}", "IN_PROGRESS"), False),
    (job_state_change("my-first-transcription-job", "COMPLETED"), False),  # somebody else's job
    (job_state_change(f"parley-prod-{ULID}", "COMPLETED"), False),  # another stage's
    ({**job_state_change(f"parley-{STAGE}-{ULID}", "COMPLETED"), "source": "aws.s3"}, False),
    ({**job_state_change(f"parley-{STAGE}-{ULID}", "COMPLETED"), "detail-type": "Call Analytics Job State Change"},
     False),
], ids=["completed", "failed", "in-progress", "other-job", "other-stage", "other-source", "other-type"])
def test_the_rule_matches_transcribes_documented_event_for_our_jobs_only(
        stack: Any, event: dict[str, Any], matches: bool) -> None:
    assert rule_matches(_job_rule_pattern(stack), event) is matches


def test_the_bus_delivers_only_our_jobs_events(bus: Any, aws: dict[str, str]) -> None:
    announce_job_state("my-first-transcription-job", "COMPLETED")
    announce_job_state(f"parley-{STAGE}-{ULID}", "IN_PROGRESS")
    bus.pump()
    assert job_events_deliveries(bus) == []

    announce_job_state(f"parley-{STAGE}-{ULID}", "COMPLETED")
    bus.pump()
    assert len(job_events_deliveries(bus)) == 1 and bus.failures == []


@pytest.mark.parametrize(("name", "status", "outcome"), [
    (f"parley-{STAGE}-{ULID}", "COMPLETED", "not-waiting"),  # no execution stored a token for it
    (f"parley-{STAGE}-v2-{ULID}", "COMPLETED", "not-ours"),  # matches the rule's prefix, not our names
    (f"parley-{STAGE}-{ULID}", "IN_PROGRESS", "not-final"),
])
def test_the_handler_ignores_what_no_execution_waits_for(runner: Any, aws: dict[str, str], name: str, status: str,
                                                         outcome: str) -> None:
    result = runner.invoke(FUNCTION, job_state_change(name, status))
    assert result == {"jobName": name, "status": status, "outcome": outcome}


def test_the_handler_rejects_an_event_that_is_not_transcribes(runner: Any, aws: dict[str, str]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        runner.invoke(FUNCTION, {**job_state_change(f"parley-{STAGE}-{ULID}", "COMPLETED"), "source": "parley"})


# -- the cost target (issue 8): deterministic, a count ---------------------------------------------------
def test_a_120_s_transcription_costs_at_most_15_transitions_with_the_event_driven_wait() -> None:
    from bench.transcription_transitions import EVENT_DRIVEN, measure

    assert measure(0, EVENT_DRIVEN) <= 15
