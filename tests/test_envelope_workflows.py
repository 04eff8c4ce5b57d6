"""Seed 000's envelope actions that run a workflow or invoke another function (stt, analyze,
get_transcribe_url), on moto with the state machines executing, against their resource routes."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from local_stack.lambdas import released
from local_stack.speech import JobFailure
from tests.conftest import WEBM, ApiClient, FakeTranscribe, assert_error
from tests.test_envelope import CONVERSATION, act, ok


@pytest.fixture
def chat_module(runner: Any) -> Any:
    return runner.module("ChatFunction")


@pytest.fixture
def finish_workflows(workflows: Any, chat_module: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The envelope's pause between reads runs the started executions to their end instead of
    sleeping: deterministic, and the next read sees the outcome."""
    def run_to_end(_seconds: float) -> None:
        with released():  # the executions' tasks are functions too: let them run
            for machine in ("TranscriptionStateMachine", "AnalysisStateMachine"):
                for arn in workflows.executions(machine):
                    workflows.wait(arn)

    monkeypatch.setattr(chat_module, "PAUSE", run_to_end)
    return workflows



def test_get_transcribe_url_is_the_stream_url_route(api: ApiClient, workflows: Any) -> None:
    envelope = ok(act(api, "get_transcribe_url", language="en-GB", sampleRate=8000))
    route = ok(api.get("/transcriptions/stream-url", query="languageCode=en-GB&sampleRate=8000"))
    for body in (envelope, route):
        url = urlsplit(body["url"])
        query = parse_qs(url.query)
        assert (url.scheme, url.path) == ("wss", "/stream-transcription-websocket")
        assert (query["language-code"], query["sample-rate"], query["X-Amz-Expires"]) == (["en-GB"], ["8000"], ["60"])
        assert len(query["X-Amz-Signature"][0]) == 64
    assert 55 <= envelope["expiresIn"] <= 60 and envelope["sampleRate"] == 8000
    assert_error(act(api, "get_transcribe_url", sampleRate=1000), 422, "VALIDATION_ERROR")


def test_stt_waits_for_the_transcription_workflow(api: ApiClient, transcribe: FakeTranscribe,
                                                  finish_workflows: Any, aws: dict[str, str]) -> None:
    audio = base64.b64encode(WEBM).decode()
    envelope = ok(act(api, "stt", audio=audio, language="en-US"))
    assert envelope["success"] is True and envelope["transcript"] == "Hi, I'm Emma. How are you today?"
    assert envelope["poll"] is None and envelope["status"] == "completed"
    route = api.get(f"/transcriptions/{envelope['transcriptionId']}").json()
    assert route["text"] == envelope["transcript"] and route["status"] == "completed"
    assert boto3.client("s3").list_objects_v2(Bucket=aws["AudioBucket"]).get("KeyCount") == 0  # cleaned up
    # the route's checks apply as they are
    assert_error(act(api, "stt", audio=base64.b64encode(b"%PDF-1.7").decode()), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(act(api, "stt", audio="not base64!!"), 400, "INVALID_AUDIO")


def test_stt_keeps_the_transcript_with_a_client_session(api: ApiClient, transcribe: FakeTranscribe,
                                                        finish_workflows: Any) -> None:
    ok(act(api, "start_session", sessionId="client-stt-0001"), 201)
    envelope = ok(act(api, "stt", audio=base64.b64encode(WEBM).decode(), sessionId="client-stt-0001"))
    assert envelope["transcription"]["sessionId"] == api.get("/sessions").json()["items"][0]["sessionId"]
    assert_error(act(api, "stt", audio=base64.b64encode(WEBM).decode(), sessionId="not-a-session"), 404, "NOT_FOUND")


def test_a_failed_transcription_is_a_422_with_its_reason(api: ApiClient, transcribe: FakeTranscribe,
                                                         finish_workflows: Any) -> None:
    transcribe.outcome = JobFailure("The media format provided does not match the detected media format.")
    error = assert_error(act(api, "stt", audio=base64.b64encode(WEBM).decode()), 422, "TRANSCRIPTION_FAILED")
    assert error["details"][0]["reason"] == "TranscriptionJobFailed"


def test_stt_answers_202_with_the_id_to_poll_when_the_wait_is_over(api: ApiClient, transcribe: FakeTranscribe,
                                                                   chat_module: Any, workflows: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_module, "ENV", chat_module.ENV.model_copy(update={"envelope_wait_seconds": 0.0}))
    pending = ok(act(api, "stt", audio=base64.b64encode(WEBM).decode()), 202)
    assert pending["success"] is False and pending["transcript"] is None
    assert pending["status"] in ("queued", "running")
    assert pending["poll"] == f"/transcriptions/{pending['transcriptionId']}"
    for arn in workflows.executions("TranscriptionStateMachine"):
        workflows.wait(arn)
    assert api.get(pending["poll"]).json()["status"] == "completed"


def test_analyze_a_saved_session_is_the_analysis_route(api: ApiClient, finish_workflows: Any) -> None:
    ok(act(api, "start_session", sessionId="client-analyse-1"), 201)
    for message in CONVERSATION:
        ok(act(api, "save_message", sessionId="client-analyse-1", message=message), 201)
    envelope = ok(act(api, "analyze", sessionId="client-analyse-1", messages=CONVERSATION))
    assert envelope["success"] is True and envelope["sessionId"] == "client-analyse-1"
    parley_id = api.get("/sessions").json()["items"][0]["sessionId"]
    route = ok(api.post(f"/sessions/{parley_id}/analysis"))  # already analysed and unchanged: 200, no new run
    assert route["report"] == envelope["report"]
    assert len(finish_workflows.executions("AnalysisStateMachine")) == 1
    analysis = envelope["analysis"]
    scores = route["report"]["scores"]
    assert analysis["cafp_scores"] == {d: None if scores[d]["score"] is None else scores[d]["score"] * 10
                                       for d in ("complexity", "accuracy", "fluency", "pronunciation")}
    assert analysis["fillers"]["count"] == route["report"]["measurements"]["text"]["fillers"] >= 1
    assert analysis["vocabulary"]["total_words"] == route["report"]["measurements"]["text"]["learnerWords"]
    assert "more better" in [c["original"] for c in analysis["grammar_corrections"]]
    assert len(analysis["improvement_tips"]) == 3
    # ...and get_session_detail now shows it, as the seed did
    detail = ok(act(api, "get_session_detail", sessionId="client-analyse-1"))
    assert detail["analysis"]["cafpScores"] == analysis["cafp_scores"]
    assert detail["analysis"]["grammarCorrections"] == analysis["grammar_corrections"]


def test_analyze_messages_alone_saves_one_session_for_them(api: ApiClient, finish_workflows: Any) -> None:
    first = ok(act(api, "analyze", messages=CONVERSATION, settings={"level": "beginner"}))
    again = ok(act(api, "analyze", messages=CONVERSATION))
    assert first["sessionId"] == again["sessionId"] and again["report"] == first["report"]
    assert len(finish_workflows.executions("AnalysisStateMachine")) == 1
    sessions = api.get("/sessions").json()["items"]
    assert [s["clientSessionId"] for s in sessions] == [first["sessionId"]]  # an id the client can send back
    assert (sessions[0]["status"], sessions[0]["turnCount"], sessions[0]["level"]) == ("completed", 3, "beginner")


def test_analyze_messages_of_a_saved_session_analyses_that_session(api: ApiClient, finish_workflows: Any) -> None:
    # the seed's clients save the conversation as it goes, then send it again to analyze
    ok(act(api, "start_session", sessionId="client-saved-001"), 201)
    ok(act(api, "start_session", sessionId="client-other-001"), 201)  # newer, with other words
    ok(act(api, "save_message", sessionId="client-other-001", message={"role": "user", "content": "Hi"}), 201)
    for message in CONVERSATION:
        ok(act(api, "save_message", sessionId="client-saved-001", message=message), 201)
    ok(act(api, "end_session", sessionId="client-saved-001"))

    analysed = ok(act(api, "analyze", messages=CONVERSATION))
    assert analysed["sessionId"] == "client-saved-001"
    assert [s["clientSessionId"] for s in ok(act(api, "get_sessions"))["sessions"]] == ["client-other-001",
                                                                                       "client-saved-001"]
    assert ok(act(api, "get_session_detail", sessionId="client-saved-001"))["analysis"] is not None
