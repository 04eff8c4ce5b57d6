"""The state machines' error handling, read from their definitions: what the fault matrix
(tests/test_fault_matrix.py) executes, checked here for every task, including ones no fault reaches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_stack.template import ROOT, Stack
from parley.speech.transcription.service import WORKFLOW_TIMEOUT

MACHINES = {"transcription": ROOT / "statemachines" / "transcription.asl.json",
            "analysis": ROOT / "statemachines" / "analysis.asl.json"}
LAMBDA_TRANSIENT = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException", "Sandbox.Timedout", "ServiceUnavailable"}


def states(machine: str) -> dict[str, Any]:
    return dict(json.loads(MACHINES[machine].read_text(encoding="utf-8"))["States"])


def tasks() -> list[tuple[str, str, dict[str, Any]]]:
    return [(machine, name, state) for machine in MACHINES for name, state in states(machine).items()
            if state["Type"] == "Task"]


@pytest.mark.parametrize(("machine", "name", "state"), tasks(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_task_retries_transient_errors_by_name_and_catches_the_rest(machine: str, name: str,
                                                                          state: dict[str, Any]) -> None:
    retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
    assert retried, f"{machine}.{name} retries nothing"
    assert not retried & {"States.ALL", "States.TaskFailed"}, f"{machine}.{name}: retry by name, not everything"
    if state["Resource"].startswith("${") or state["Resource"].endswith("lambda:invoke"):
        assert retried >= LAMBDA_TRANSIENT, (machine, name, LAMBDA_TRANSIENT - retried)
    assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), f"{machine}.{name} has no way out"


def test_every_failure_path_of_the_transcription_ends_in_cleanup() -> None:
    machine = states("transcription")

    def reaches(start: str, goal: str, seen: set[str] | None = None) -> bool:
        seen = seen if seen is not None else set()
        if start == goal:
            return True
        if start in seen:
            return False
        seen.add(start)
        state = machine[start]
        nexts = [state.get("Next"), state.get("Default"), *(c["Next"] for c in state.get("Choices", [])),
                 *(c["Next"] for c in state.get("Catch", []))]
        return any(reaches(n, goal, seen) for n in nexts if n)

    for name, state in machine.items():
        for catch in state.get("Catch", []):
            if catch["Next"] == "RecordFailure":
                assert reaches(catch["Next"], "DeleteAudio"), name
    record = machine["RecordFailure"]
    assert [c["Next"] for c in record["Catch"]] == ["FailureNotRecorded"]
    assert reaches("FailureNotRecorded", "DeleteAudio") and reaches("FailureNotRecorded", "DeleteUpload")


def test_the_transcriptions_timeout_is_the_one_the_status_read_waits_out() -> None:
    definition = json.loads(MACHINES["transcription"].read_text(encoding="utf-8"))
    assert definition["TimeoutSeconds"] == WORKFLOW_TIMEOUT.total_seconds()
    # ...and the template's default waits fit well inside it: the event wait, then every poll.
    parameters = Stack().template["Parameters"]
    event_wait = int(parameters["TranscriptionEventWaitSeconds"]["Default"])
    wait, longest = int(parameters["TranscriptionPollIntervalSeconds"]["Default"]), int(
        parameters["TranscriptionMaxPollIntervalSeconds"]["Default"])
    polling = 0
    for _ in range(int(parameters["TranscriptionMaxPolls"]["Default"])):
        polling += wait
        wait = min(wait * 2, longest)
    assert event_wait + polling < definition["TimeoutSeconds"] / 4
