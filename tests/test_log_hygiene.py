"""What the logs may hold: no owner id (a device id is a bearer credential in device mode) — only
its keyed hash — and no key an earlier invocation appended."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.bus import BusRelay
from local_stack.lambdas import FunctionRunner
from local_stack.speech import NO_OUTPUT, emulate_speech
from local_stack.template import Stack
from parley.core.observability import logger
from tests.conftest import WEBM, ApiClient, FakeTranscribe, assert_error
from tests.test_proofreading_websocket import Sockets, Ws, sockets, ws

__all__ = ["sockets", "ws"]  # the WebSocket tests' fixtures, reused here
EVENTS = Path(__file__).resolve().parent.parent / "events"


class Capture(logging.Handler):
    """Every record at INFO and above, formatted as the function's log line would be."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if any(seen is record for seen in self.records):  # reached through our logger and the root
            return
        self.records.append(record)
        formatter = logger.registered_formatter if record.name == logger.name else None
        self.lines.append(formatter.format(record) if formatter else f"{record.name} {record.getMessage()}")


@pytest.fixture
def logs() -> Iterator[Capture]:
    capture = Capture()
    ours, root = logging.getLogger(logger.name), logging.getLogger()
    levels = (ours.level, root.level)
    for target in (ours, root):
        target.addHandler(capture)
        target.setLevel(logging.INFO)
    yield capture
    for target, level in zip((ours, root), levels, strict=True):
        target.removeHandler(capture)
        target.setLevel(level)


def test_a_scripted_run_logs_no_device_id_only_its_hash(api: ApiClient, runner: FunctionRunner, workflows: Any,
                                                         bus: BusRelay, sockets: Sockets, ws: Ws, aws: dict[str, str],
                                                         logs: Capture, capsys: pytest.CaptureFixture[str]) -> None:
    # Given three devices with recognisable ids
    devices = [f"scanned-{name}-{uuid.uuid4().hex[:10]}" for name in ("learner", "writer", "stranger")]
    learner, writer, stranger = (api.as_device(d) for d in devices)
    # When they use everything: the tutor, speech, the action API, proofreading, the WebSocket, errors
    learner.put("/settings", {"accent": "UK", "level": "advanced"})
    session = learner.post("/sessions", {}).json()
    sid = session["sessionId"]
    learner.post(f"/sessions/{sid}/messages", {"role": "user", "content": "I goed to the park."})
    learner.post("/chat", {"sessionId": sid, "message": "And then I ate lunch."})
    learner.post("/chat", {"action": "get_sessions"})
    learner.post("/chat", {"action": "tts", "text": "Hello there."})
    learner.post("/speech", {"text": "Good morning."})
    learner.get("/transcriptions/stream-url")
    learner.post("/chat", {"action": "get_transcribe_url"})
    learner.post("/transcriptions/upload-url", {"format": "webm", "sizeBytes": 1000})
    fake = FakeTranscribe()
    with emulate_speech(fake, speak=False):
        created = learner.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode()}).json()
        for arn in workflows.executions("TranscriptionStateMachine"):
            workflows.wait(arn)
        fake.outcome = NO_OUTPUT  # a failure path, whose error names the object (and its owner path)
        learner.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode()})
        for arn in workflows.executions("TranscriptionStateMachine"):
            workflows.wait(arn)
    learner.get(f"/transcriptions/{created['transcriptionId']}")
    learner.post(f"/sessions/{sid}/end")
    learner.delete(f"/sessions/{sid}")
    writer.post("/proofread", {"text": "Teh quick brown fox."})
    writer.get("/conversations")
    assert_error(stranger.get(f"/sessions/{sid}"), 404, "NOT_FOUND")
    assert_error(stranger.post("/sessions", {"accent": "FR"}), 422, "VALIDATION_ERROR")
    assert_error(stranger.get("/sessions", query="cursor=not-a-cursor"), 400, "INVALID_CURSOR")
    connection = ws.connect(devices[1])
    ws.send(connection, {"action": "sendMessage", "text": "Proofread this, plese."})
    ws.disconnect(connection)
    bus.pump()  # usage events through the recorder
    # Then no line names a device id, and the owners' hashes are there instead
    printed = capsys.readouterr()
    text = "\n".join([*logs.lines, printed.out, printed.err])
    assert len(logs.lines) > 10, logs.lines
    for device in devices:
        assert device not in text, [line for line in text.splitlines() if device in line][:3]
    hasher = runner.module("AuthorizerFunction").OWNER_HASH  # keyed with the deployment's secret
    assert hasher.secret_name and hasher(f"DEVICE#{devices[0]}") in text and hasher(f"DEVICE#{devices[1]}") in text
    print(f"\nlog scan: {len(logs.lines)} log lines of {len(devices)} devices, "
          f"{sum(text.count(d) for d in devices)} device ids found")


def test_no_function_keeps_log_keys_from_an_earlier_invocation(stack: Stack, runner: FunctionRunner,
                                                              aws: dict[str, str]) -> None:
    """Every handler clears the logger's keys when an invocation starts (clear_state)."""
    leaked: list[str] = []
    for logical_id, spec in runner.specs.items():
        sample = EVENTS / f"{spec.code_uri.name}.json"
        event = json.loads(sample.read_text(encoding="utf-8")) if sample.exists() else {}
        logger.append_keys(from_an_earlier_invocation="session 01KEARLIER")
        with contextlib.suppress(Exception):  # the sample may need data this test does not set up
            runner.invoke(logical_id, event)
        if "from_an_earlier_invocation" in logger.get_current_keys():
            leaked.append(logical_id)
    logger.remove_keys(["from_an_earlier_invocation"])
    assert leaked == []


def test_a_line_of_one_request_carries_no_key_appended_by_another(runner: FunctionRunner, api: ApiClient,
                                                                  aws: dict[str, str], logs: Capture) -> None:
    # Given an invocation that appended keys (the analysis workflow's measure step names its execution)
    event = json.loads((EVENTS / "analysis_measure.json").read_text(encoding="utf-8"))
    with contextlib.suppress(Exception):  # its session does not exist here; the keys were appended first
        runner.invoke("AnalysisMeasureFunction", event)
    logs.lines.clear()
    logs.records.clear()
    # When an unrelated request logs a line
    prompt = api.post("/prompts", {"name": "Desk"}).json()
    api.delete(f"/prompts/{prompt['promptId']}")
    # Then that line has its own keys only
    lines = [json.loads(text) for text in logs.lines if "Prompt deleted" in text]
    assert lines
    line = lines[0]
    assert "execution" not in line and "session_id" not in line
    assert line["prompt_id"] == prompt["promptId"]

