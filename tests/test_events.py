"""Every sample event under events/ goes through its function's handler, so none of them rots.

``events/<dir>.json`` is the event for the function whose CodeUri is ``functions/<dir>/`` — the
file to pass to ``sam local invoke <Function> -e events/<dir>.json``. Each has a check below
(and, where the event refers to existing data, a setup that creates it first).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_stack.lambdas import FunctionRunner, direct_invocations
from local_stack.template import Stack
from parley.core import clients
from parley.data import keys
from tests import analysis_events, proofreading_events, speech_events

EVENTS = Path(__file__).resolve().parent.parent / "events"
SAMPLE_OWNER = "DEVICE#sample-device-0001"

Setup = Callable[[dict[str, str], dict[str, Any]], None]
Check = Callable[[Any], None]


def _session_from_event(names: dict[str, str], event: dict[str, Any]) -> None:
    """Create the session the sample event's path names, owned by the sample device."""
    session_id = event["pathParameters"]["sessionId"]
    boto3.resource("dynamodb").Table(names["Table"]).put_item(Item={
        "PK": SAMPLE_OWNER, "SK": keys.session_meta_sk(session_id), "GSI1PK": keys.session_gsi1pk(session_id),
        "GSI1SK": "META", "type": "SESSION_META", "sessionId": session_id, "tutorName": "Emma", "topic": "daily",
        "accent": "US", "level": "intermediate", "gender": "female", "status": "active",
        "startedAt": keys.session_started_at(session_id), "messageCount": 0,
    })


def status_is(expected: int, *, has: tuple[str, ...] = ()) -> Check:
    def check(result: Any) -> None:
        assert result["statusCode"] == expected, result
        body = json.loads(result["body"]) if result.get("body") else {}
        for key in has:
            assert key in body, (key, body)

    return check


def _allow_policy(result: Any) -> None:
    assert result["context"]["owner"] == SAMPLE_OWNER
    # what API Gateway logs is the owner's keyed hash, never the owner (a credential in device mode)
    assert result["principalId"] == result["context"]["ownerHash"] and result["principalId"].startswith("oh_")
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def _usage_month(names: dict[str, str], event: dict[str, Any]) -> None:
    """Counted usage for the sample device in the month the sample event asks for."""
    month = event["queryStringParameters"]["month"]
    boto3.resource("dynamodb").Table(names["Table"]).put_item(Item={
        "PK": SAMPLE_OWNER, "SK": keys.usage_day_sk(f"{month}-22", "bedrock"), "type": "USAGE_DAY",
        "date": f"{month}-22", "engine": "bedrock", "inputTokens": 812, "totalTokens": 876, "events": 1})


def _usage_counted(result: Any) -> None:
    assert result == {"counted": True}, result


def _usage_report(result: Any) -> None:
    status_is(200, has=("month", "totals", "byEngine", "days", "quota"))(result)
    body = json.loads(result["body"])
    assert body["days"][0]["engine"] == "bedrock" and body["days"][0]["inputTokens"] == 812


SETUPS: dict[str, Setup] = {
    "conversations": proofreading_events.conversation,
    "ws_message": proofreading_events.connection,
    "ws_disconnect": proofreading_events.connection,
    "analysis": analysis_events.session_and_state_machine,
    "analysis_measure": analysis_events.session_with_turns,
    "analysis_judge": analysis_events.session_with_turns,
    "analysis_save": analysis_events.session_with_turns,
    "analysis_fail": analysis_events.session_with_turns,
    "messages": _session_from_event,
    "usage": _usage_month,
    "transcriptions": speech_events.queued_transcription,
    "transcription_prepare": speech_events.queued_transcription,
    "transcription_collect": speech_events.running_transcription_with_output,
    "transcription_failure": speech_events.queued_transcription,
    "transcription_job_events": speech_events.waiting_execution_token,
}

CHECKS: dict[str, Check] = {
    "prompts": status_is(201, has=("promptId", "budget", "engine")),
    "proofread": proofreading_events.proofread,
    "conversations": proofreading_events.one_conversation,
    "ws_authorizer": _allow_policy,
    "ws_connect": proofreading_events.accepted,
    "ws_disconnect": proofreading_events.accepted,
    "ws_message": proofreading_events.streamed_to_the_connection,
    "usage_recorder": _usage_counted,
    "usage": _usage_report,
    "analysis": analysis_events.started,
    "analysis_measure": analysis_events.measured,
    "analysis_judge": analysis_events.judged,
    "analysis_save": analysis_events.saved,
    "analysis_fail": analysis_events.marked_failed,
    "authorizer": _allow_policy,
    "settings": status_is(200, has=("accent", "updatedAt")),
    "sessions": status_is(201, has=("sessionId", "status")),
    "messages": status_is(201, has=("messageId", "turnNumber")),
    "chat": status_is(200, has=("reply", "engine", "model", "usage")),
    "speech": speech_events.spoken,
    "transcriptions": speech_events.transcription_read,
    "transcription_stream_url": speech_events.stream_url,
    "transcription_prepare": speech_events.prepared,
    "transcription_collect": speech_events.collected,
    "transcription_failure": speech_events.failed,
    "transcription_job_events": speech_events.job_event_handled,
}


def _event_files() -> list[Path]:
    return sorted(EVENTS.glob("*.json"))


def test_every_function_has_a_sample_event_and_a_check(stack: Stack) -> None:
    dirs = {spec.code_uri.name for spec in stack.functions().values()}
    files = {path.stem for path in _event_files()}
    assert dirs <= files, f"functions without a sample event: {sorted(dirs - files)}"
    assert files <= set(CHECKS), f"sample events without a check: {sorted(files - set(CHECKS))}"


@pytest.fixture
def async_invocations_inline(runner: FunctionRunner, aws: dict[str, str]) -> Any:
    """A handler's asynchronous lambda:Invoke of a template function (the WebSocket message
    function starting its answer) runs right away, in-process, as it would in its own invocation."""
    undo = direct_invocations(runner, run_async=lambda invocation: invocation())
    clients.reset()  # clients copy the session's hooks when made
    yield
    undo()
    clients.reset()


@pytest.mark.parametrize("path", _event_files(), ids=lambda p: p.stem)
@pytest.mark.usefixtures("async_invocations_inline")
def test_sample_event_through_its_handler(path: Path, runner: FunctionRunner, aws: dict[str, str]) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    spec = next(s for s in runner.specs.values() if s.code_uri.name == path.stem)
    if path.stem in SETUPS:
        SETUPS[path.stem](aws, event)
    CHECKS[path.stem](runner.invoke(spec.logical_id, event))
