"""The transcription state machine on Step Functions Local (Docker) with its mock configuration.

Runs only where a Docker engine answers (``make test-sfn-local``); skipped elsewhere - our machines
and CI have none, and there moto's interpreter (tests/test_transcription_workflow.py) is what runs.
The mocked responses (tests/sfn_local/MockConfigFile.json) replace every Task, so this checks the
definition's control flow on the real interpreter: the event wait resumed (COMPLETED, FAILED) or
timing out into the poll, poll until COMPLETED, FAILED into cleanup, a cleanup error that outlasts
its retries.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_stack.template import Stack
from local_stack.workflows import definition_of

pytestmark = pytest.mark.sfn_local

IMAGE = "amazon/aws-stepfunctions-local:latest"
MOCKS = Path(__file__).resolve().parent / "sfn_local" / "MockConfigFile.json"


def docker_runs() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0  # noqa: S607


@pytest.fixture(scope="module")
def sfn_local() -> Iterator[Any]:
    if not docker_runs():
        pytest.skip("Step Functions Local needs a Docker engine, and none answers here (`docker info` fails); "
                    "moto's interpreter covers the workflow in tests/test_transcription_workflow.py")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    name = f"parley-sfn-local-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8083",  # noqa: S603,S607
                    "-v", f"{MOCKS}:/mock/MockConfigFile.json:ro",
                    "-e", "SFN_MOCK_CONFIG=/mock/MockConfigFile.json", IMAGE], check=True)
    try:
        client = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        for _ in range(60):
            try:
                client.list_state_machines()
                break
            except Exception:
                time.sleep(0.5)
        stack = Stack(parameters={"Stage": "local", "AuthMode": "device"})
        definition = definition_of(stack, "TranscriptionStateMachine",
                                   {"PollIntervalSeconds": "0", "PollMaxIntervalSeconds": "0", "MaxPolls": "5"})
        arn = client.create_state_machine(name="parley-local-transcription", definition=definition,
                                          roleArn="arn:aws:iam::123456789012:role/DummyRole")["stateMachineArn"]
        yield client, arn
    finally:
        subprocess.run(["docker", "stop", name], capture_output=True, check=False)  # noqa: S603,S607


def run(client: Any, arn: str, case: str) -> dict[str, Any]:
    execution = client.start_execution(stateMachineArn=f"{arn}#{case}", input=json.dumps({"transcriptionId": "x"}))
    for _ in range(200):
        found = client.describe_execution(executionArn=execution["executionArn"])
        if found["status"] != "RUNNING":
            return found  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise TimeoutError(case)


def test_happy_path(sfn_local: Any) -> None:
    assert run(*sfn_local, "HappyPath")["status"] == "SUCCEEDED"


def test_failed_job_goes_through_cleanup(sfn_local: Any) -> None:
    found = run(*sfn_local, "JobFailed")
    assert (found["status"], found.get("error")) == ("FAILED", "TranscriptionFailed")


def test_cleanup_error_fails_the_execution(sfn_local: Any) -> None:
    found = run(*sfn_local, "CleanupFails")
    assert (found["status"], found.get("error")) == ("FAILED", "CleanupFailed")


def test_the_event_driven_wait_skips_the_poll(sfn_local: Any) -> None:
    client, arn = sfn_local
    found = run(client, arn, "EventDriven")
    assert found["status"] == "SUCCEEDED"
    entered = [e["stateEnteredEventDetails"]["name"]
               for e in client.get_execution_history(executionArn=found["executionArn"])["events"]
               if "stateEnteredEventDetails" in e]
    assert "GetJob" not in entered and "EventSaysDone?" in entered


def test_a_failed_event_goes_through_cleanup(sfn_local: Any) -> None:
    found = run(*sfn_local, "EventFailed")
    assert (found["status"], found.get("error")) == ("FAILED", "TranscriptionFailed")
