"""Shared fixtures: emulated AWS built from template.yaml, the template's functions, an API client.

Every handler test goes through the same path a request takes in AWS: the route the template
wires, the authorizer the template names, the event API Gateway sends, the handler.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Fake credentials and a fixed region before anything creates a boto3 client.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false",
})
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import pytest
from moto import mock_aws

from local_stack.gateway import HttpResponse, RestGateway
from local_stack.lambdas import FunctionRunner
from local_stack.resources import provision
from local_stack.speech import emulate_speech
from local_stack.template import Stack
from local_stack.workflows import Workflows
from parley.core import clients

TRANSCRIBE_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "transcribe"
WEBM = b"\x1a\x45\xdf\xa3" + bytes(200)  # a WebM header and no clusters: audio of unknown length
TEST_PARAMETERS = {"Stage": "test", "AuthMode": "device", "CorsAllowOrigin": "https://app.example.com"}
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


@pytest.fixture(scope="session")
def stack() -> Stack:
    return Stack(parameters=TEST_PARAMETERS)


@pytest.fixture(scope="session")
def runner(stack: Stack) -> FunctionRunner:
    """The template's functions, loaded once per test run (their cold start), as in Lambda."""
    return FunctionRunner(stack, env_overrides={"POWERTOOLS_TRACE_DISABLED": "true",
                                                "POWERTOOLS_METRICS_DISABLED": "true",
                                                "AI_PROVIDER": "offline"})  # the template's default is bedrock


@pytest.fixture
def aws(stack: Stack, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Emulated AWS with the template's table, bucket, bus and queues; yields their names.

    A module marked ``pytestmark = pytest.mark.shared_aws`` gets one emulator for all its tests
    (``module_aws``): for modules whose tests keep apart by owner (each test its own device)."""
    if request.node.get_closest_marker("shared_aws"):
        yield request.getfixturevalue("module_aws")
        return
    clients.reset()
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        yield provision(stack)
    clients.reset()


class ApiClient:
    """Calls the REST API through the emulated gateway as one device (or as nobody)."""

    def __init__(self, gateway: RestGateway, device_id: str | None) -> None:
        self.gateway = gateway
        self.device_id = device_id

    def as_device(self, device_id: str | None) -> ApiClient:
        return ApiClient(self.gateway, device_id)

    def request(self, method: str, path: str, *, json_body: Any = None, body: bytes | str | None = None,
                query: str = "", headers: dict[str, str] | None = None) -> HttpResponse:
        all_headers = {"Content-Type": "application/json", "Origin": "https://app.example.com", **(headers or {})}
        if self.device_id is not None:
            all_headers["X-Device-Id"] = self.device_id
        if json_body is not None:
            body = json.dumps(json_body)
        return self.gateway.handle(method, path, headers=all_headers, query=query, body=body)

    def get(self, path: str, **kw: Any) -> HttpResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_body: Any = None, **kw: Any) -> HttpResponse:
        return self.request("POST", path, json_body=json_body, **kw)

    def put(self, path: str, json_body: Any = None, **kw: Any) -> HttpResponse:
        return self.request("PUT", path, json_body=json_body, **kw)

    def delete(self, path: str, **kw: Any) -> HttpResponse:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def gateway(stack: Stack, runner: FunctionRunner, aws: dict[str, str]) -> RestGateway:
    return RestGateway(stack, runner)


@pytest.fixture
def api(gateway: RestGateway) -> ApiClient:
    return ApiClient(gateway, device_id=f"device-{uuid.uuid4().hex[:12]}")


def assert_error(response: HttpResponse, status: int, code: str) -> dict[str, Any]:
    """The one stable error body every endpoint answers with."""
    assert response.status == status, response.body
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return body["error"]


# -- state machines on moto (local_stack/workflows.py) ----------------------------------------------
# Substitutions every workflow test gets: no real waiting in Wait states. Names that a definition
# does not use are ignored, so each workflow's tunables can live here side by side.
WORKFLOW_SUBSTITUTIONS: dict[str, str] = {
    "PollIntervalSeconds": "0",
    "PollMaxIntervalSeconds": "0",
    "MaxPolls": "5",  # the transcription workflow: a timeout after 5 polls, not 40
    # The transcription workflow's event-driven wait times out after 1 s (nobody sends Transcribe's
    # event here), so these tests take the poll, its safety net; tests/test_transcription_events.py
    # sends the events. Not 0: moto then races the timeout against scheduling the task and can record
    # a corrupt history event.
    "EventWaitSeconds": "1",
}


def test_workflows_of(stack: Stack, runner: FunctionRunner, **substitutions: str) -> Workflows:
    """``Workflows`` as every test uses them: WORKFLOW_SUBSTITUTIONS (overridden by ``substitutions``)
    and no real Retry waits. moto's interpreter sleeps each Retry's interval (the Judge's 5 s, then
    15 s): here the retries happen, and what they would have slept is in ``skipped_retry_waits``."""
    return Workflows(stack, runner, substitutions={**WORKFLOW_SUBSTITUTIONS, **substitutions}, retry_waits=False)


test_workflows_of.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def workflows(stack: Stack, runner: FunctionRunner, aws: dict[str, str]) -> Iterator[Any]:
    """The template's state machines created in moto, Lambda tasks running our handlers in-process.

    ``workflows.run("TranscriptionStateMachine", {...}) -> (status, output)``; ``start`` + ``wait``
    for more control; ``history``/``states_entered``/``executions``. See local_stack/workflows.py.
    Retries happen without their waits (see ``test_workflows_of``).
    """
    with test_workflows_of(stack, runner).installed() as installed:
        yield installed


# -- EventBridge delivery to the template's rule targets (local_stack/bus.py) ---------------------
@pytest.fixture
def bus(stack: Stack, runner: FunctionRunner, aws: dict[str, str]) -> Any:
    """The template's rules on moto's buses, delivered by ``bus.pump()`` to their real targets
    (Lambda functions in-process, state machines, queues) and the SQS event sources run."""
    from local_stack.bus import BusRelay

    return BusRelay(stack, runner).install()


@pytest.fixture(scope="module")
def module_aws(stack: Stack) -> Iterator[dict[str, str]]:
    """``aws`` shared by a whole test module (``pytest.mark.shared_aws``): it saves provisioning the
    emulator per test."""
    clients.reset()
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        yield provision(stack)
    clients.reset()


# -- DynamoDB's per-item atomicity, which moto does not lock -----------------------------------------
_DYNAMODB_LOCK = __import__("threading").RLock()


@__import__("contextlib").contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """Serialise moto's DynamoDB requests while threads race: DynamoDB applies each (conditional)
    write atomically, moto's in-process backend reads and writes an item without a lock."""
    from unittest import mock

    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    with mock.patch.object(DynamoHandler, "call_action", call_action):
        yield


# -- the emulated Transcribe (local_stack/speech.py) -------------------------------------------------
def transcribe_output(name: str) -> dict[str, Any]:
    """A Transcribe job's output JSON from tests/fixtures/transcribe/."""
    return json.loads((TRANSCRIBE_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


class FakeTranscribe:
    """What the emulated Transcribe does when a job has run: set ``outcome`` per test."""

    def __init__(self) -> None:
        self.outcome: Any = transcribe_output("greeting")
        self.jobs: list[str] = []

    def __call__(self, job: Any) -> Any:
        self.jobs.append(job.transcription_job_name)
        return self.outcome


@pytest.fixture
def transcribe(aws: dict[str, str]) -> Iterator[FakeTranscribe]:
    """moto's Transcribe answering every job with ``transcribe.outcome`` (Polly stays silent)."""
    fake = FakeTranscribe()
    with emulate_speech(fake, speak=False):
        yield fake
