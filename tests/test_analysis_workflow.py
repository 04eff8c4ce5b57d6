"""The analysis workflow on moto, through the API: start, status, report, failures, idempotency, trend.

The model is stubbed (``Scripted``); everything else is the real path: the template's routes and
authorizer, the handlers, the state machine from statemachines/analysis.asl.json with its Lambda
tasks running in-process, the table, and the bus (captured through an SQS rule target).

One emulated AWS serves the whole module (building it costs ~2 s); tests stay independent because
each one is a different device (owner), and executions and events are looked up by session/owner.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from moto import mock_aws

from local_stack.gateway import RestGateway
from local_stack.lambdas import FunctionRunner
from local_stack.resources import provision
from local_stack.template import Stack
from local_stack.workflows import Workflows
from parley.ai.errors import ProviderError
from parley.core import clients
from parley.core.ids import utcnow
from parley.data import keys
from parley.usage.quota import month_of
from tests.conftest import MOTO_CONFIG, ApiClient, assert_error, test_workflows_of
from tests.test_analysis_judge import Scripted, valid_answer

MACHINE = "AnalysisStateMachine"
LEARNER = ["I go to the market yesterday with my sister.",
           "We bought a lot of apples and the weather was very good.",
           "Um, it was, like, more better than last week because the sun was shining."]


@pytest.fixture(scope="module")
def emulated(stack: Stack, runner: FunctionRunner) -> Iterator[SimpleNamespace]:
    """moto with the template's resources and state machines, and a copy of the bus in SQS."""
    clients.reset()
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        names = provision(stack)
        sqs, events = boto3.client("sqs"), boto3.client("events")
        url = sqs.create_queue(QueueName="analysis-test-bus-copy")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="copy-all", EventBusName=names["EventBus"],
                        EventPattern=json.dumps({"source": ["parley"]}))
        events.put_targets(Rule="copy-all", EventBusName=names["EventBus"], Targets=[{"Id": "q", "Arn": arn}])
        with test_workflows_of(stack, runner).installed() as installed:
            yield SimpleNamespace(names=names, workflows=installed, gateway=RestGateway(stack, runner),
                                  bus_copy=url, seen=[])
    clients.reset()


@pytest.fixture
def aws(emulated: SimpleNamespace) -> dict[str, str]:
    return emulated.names  # type: ignore[no-any-return]


@pytest.fixture
def workflows(emulated: SimpleNamespace) -> Workflows:
    return emulated.workflows  # type: ignore[no-any-return]


@pytest.fixture
def api(emulated: SimpleNamespace) -> ApiClient:
    return ApiClient(emulated.gateway, device_id=f"device-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def bus_events(emulated: SimpleNamespace, api: ApiClient) -> Any:
    """The events this test's owner put on the app's bus (read back through the SQS copy)."""
    sqs = boto3.client("sqs")

    def read() -> list[dict[str, Any]]:
        while batch := sqs.receive_message(QueueUrl=emulated.bus_copy, MaxNumberOfMessages=10).get("Messages", []):
            emulated.seen.extend(json.loads(m["Body"]) for m in batch)
            sqs.delete_message_batch(QueueUrl=emulated.bus_copy, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
        return [e for e in emulated.seen if e["detail"].get("owner") == owner(api)]

    return read


def executions(workflows: Workflows, session_id: str) -> list[str]:
    """This session's analysis executions, newest first."""
    return [arn for arn in workflows.executions(MACHINE) if f":{session_id}-" in arn]


def stub_engine(runner: FunctionRunner, monkeypatch: pytest.MonkeyPatch, provider: Any) -> Any:
    monkeypatch.setattr(runner.module("AnalysisJudgeFunction"), "engine", lambda: provider)
    return provider


def owner(api: ApiClient) -> str:
    return f"DEVICE#{api.device_id}"


def table(aws: dict[str, str]) -> Any:
    return boto3.resource("dynamodb").Table(aws["Table"])


def make_session(api: ApiClient, learner: list[str] = LEARNER) -> str:
    session_id = api.post("/sessions", {"topic": "daily"}).json()["sessionId"]
    for text in learner:
        tutor = {"role": "assistant", "content": "Tell me more!"}
        assert api.post(f"/sessions/{session_id}/messages", tutor).status == 201
        assert api.post(f"/sessions/{session_id}/messages", {"role": "user", "content": text}).status == 201
    return session_id


def add_transcript(aws: dict[str, str], api: ApiClient, session_id: str, transcription_id: str = "T1") -> None:
    words = [{"text": w, "start": i * 0.5, "end": i * 0.5 + 0.4, "confidence": 0.9 - 0.1 * (i % 3)}
             for i, w in enumerate(LEARNER[0].split(" "))]
    item = {"PK": owner(api), "SK": keys.session_transcript_sk(session_id, transcription_id), "type": "TRANSCRIPT",
            "text": LEARNER[0], "language": "en-US", "durationSeconds": 5.0, "words": words,
            "createdAt": "2026-11-22T01:00:00.000000Z"}
    table(aws).put_item(Item=json.loads(json.dumps(item), parse_float=Decimal))


def session_items(aws: dict[str, str], api: ApiClient, session_id: str) -> list[dict[str, Any]]:
    """The session's META and every item under it except the analysis."""
    items = table(aws).query(KeyConditionExpression=Key("PK").eq(owner(api)))["Items"]
    return [i for i in items if session_id in i["SK"] and i["SK"] != keys.analysis_sk(session_id)]


def run_analysis(api: ApiClient, workflows: Workflows, session_id: str) -> tuple[Any, Any]:
    started = api.post(f"/sessions/{session_id}/analysis")
    assert started.status == 202, started.body
    arn = executions(workflows, session_id)[0]
    return workflows.wait(arn), api.get(f"/sessions/{session_id}/analysis")


def detail_types(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["detail-type"] for e in events)


# -- success --------------------------------------------------------------------------------------
def test_analysis_end_to_end_with_speech(api: ApiClient, workflows: Workflows, runner: FunctionRunner,
                                         aws: dict[str, str], bus_events: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a session with three learner turns and one transcript
    provider = stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer())))
    session_id = make_session(api)
    add_transcript(aws, api, session_id)

    # When the analysis is started and runs
    started = api.post(f"/sessions/{session_id}/analysis")
    assert started.status == 202, started.body
    assert started.json()["status"] == "running"
    result = workflows.wait(executions(workflows, session_id)[0])

    # Then it succeeded through every step, and the report is on the session
    assert result.status == "SUCCEEDED", result
    assert workflows.states_entered(result.arn) == ["Measure", "Judge", "Save", "PublishCompleted", "Done"]
    body = api.get(f"/sessions/{session_id}/analysis").json()
    assert (body["status"], body["upToDate"], body["error"]) == ("completed", True, None)
    report = body["report"]
    assert report["cefr"] == "B1" and report["attempts"] == 1
    assert report["scores"]["accuracy"]["score"] == 4
    assert report["scores"]["pronunciation"]["measured"] is True
    assert report["measurements"]["speech"]["spokenWords"] == 9
    assert report["measurements"]["text"]["learnerTurns"] == 3
    assert report["measurements"]["text"]["fillerBreakdown"] == {"um": 1, "like": 1}
    assert [c["original"] for c in report["corrections"]] == ["I go to the market yesterday"]
    # ...one model call, one usage event, one AnalysisCompleted event with the scores
    assert len(provider.requests) == 1
    events = bus_events()
    assert detail_types(events) == ["AnalysisCompleted", "UsageRecorded"]
    completed = next(e for e in events if e["detail-type"] == "AnalysisCompleted")["detail"]
    assert completed["sessionId"] == session_id and completed["owner"] == owner(api)
    assert completed["scores"] == {"complexity": 5, "accuracy": 4, "fluency": 6, "pronunciation": 6}
    usage = next(e for e in events if e["detail-type"] == "UsageRecorded")["detail"]
    assert (usage["operation"], usage["product"], usage["input_tokens"]) == ("analysis", "tutor", 100)


def test_without_transcripts_pronunciation_is_not_measured(api: ApiClient, workflows: Workflows,
                                                           runner: FunctionRunner,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer())))
    result, status = run_analysis(api, workflows, make_session(api))

    assert result.status == "SUCCEEDED"
    report = status.json()["report"]
    assert report["scores"]["pronunciation"] == {"score": None, "measured": False, "evidence": [],
                                                 "reason": "Not measured: no recorded speech in this session."}
    assert report["measurements"]["speech"] is None


def test_starting_twice_for_an_unchanged_session_runs_and_bills_once(api: ApiClient, workflows: Workflows,
                                                                    runner: FunctionRunner, bus_events: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    provider = stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer())))
    session_id = make_session(api)
    first = api.post(f"/sessions/{session_id}/analysis")
    again_while_running = api.post(f"/sessions/{session_id}/analysis")
    workflows.wait(executions(workflows, session_id)[0])

    # When it is asked for again after it completed
    after = api.post(f"/sessions/{session_id}/analysis")

    # Then there was one execution, one model call, one usage event; the repeat returns the report
    assert (first.status, again_while_running.status, after.status) == (202, 202, 200)
    assert len(executions(workflows, session_id)) == 1
    assert len(provider.requests) == 1
    assert after.json()["report"]["cefr"] == "B1"
    assert detail_types(bus_events()) == ["AnalysisCompleted", "UsageRecorded"]


def test_a_changed_session_is_out_of_date_and_can_be_analysed_again(api: ApiClient, workflows: Workflows,
                                                                   runner: FunctionRunner,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer()), json.dumps(valid_answer(cefr="B2"))))
    session_id = make_session(api)
    run_analysis(api, workflows, session_id)

    # When the learner says something more
    api.post(f"/sessions/{session_id}/messages", {"role": "user", "content": "And then we went home happily."})

    # Then the old report says it is out of date, and a new analysis runs
    assert api.get(f"/sessions/{session_id}/analysis").json()["upToDate"] is False
    assert api.post(f"/sessions/{session_id}/analysis").status == 202
    newest = executions(workflows, session_id)[0]
    assert workflows.wait(newest).status == "SUCCEEDED"
    body = api.get(f"/sessions/{session_id}/analysis").json()
    assert (body["upToDate"], body["report"]["cefr"], body["report"]["measurements"]["text"]["learnerTurns"]) == (
        True, "B2", 4)


# -- the model's output ---------------------------------------------------------------------------
def test_invalid_output_then_valid_on_retry(api: ApiClient, workflows: Workflows, runner: FunctionRunner,
                                            bus_events: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = stub_engine(runner, monkeypatch, Scripted("Here's my analysis: great job!", json.dumps(valid_answer())))
    result, status = run_analysis(api, workflows, make_session(api))

    assert result.status == "SUCCEEDED"
    assert status.json()["report"]["attempts"] == 2
    assert len(provider.requests) == 2
    # both calls were billable, and both are recorded
    assert detail_types(bus_events()) == ["AnalysisCompleted", "UsageRecorded", "UsageRecorded"]


def test_invalid_output_twice_fails_with_a_reason(api: ApiClient, workflows: Workflows, runner: FunctionRunner,
                                                  aws: dict[str, str], bus_events: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stub_engine(runner, monkeypatch, Scripted('{"scores": {}}', "not json either"))
    session_id = make_session(api)
    before = session_items(aws, api, session_id)

    result, status = run_analysis(api, workflows, session_id)

    assert (result.status, result.error) == ("FAILED", "AnalysisFailed")
    assert workflows.states_entered(result.arn) == ["Measure", "Judge", "MarkFailed", "Failed"]
    body = status.json()
    assert (body["status"], body["report"], body["error"]["code"]) == ("failed", None, "InvalidModelOutput")
    assert "invalid twice" in body["error"]["reason"] and body["failedAt"]
    assert session_items(aws, api, session_id) == before
    assert "AnalysisCompleted" not in detail_types(bus_events())


def test_provider_down_fails_cleanly_and_leaves_the_session_untouched(api: ApiClient, workflows: Workflows,
                                                                     runner: FunctionRunner, aws: dict[str, str],
                                                                     bus_events: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    down = [ProviderError("Bedrock is throttling", engine="bedrock") for _ in range(3)]
    provider = stub_engine(runner, monkeypatch, Scripted(*down))
    session_id = make_session(api)
    before = session_items(aws, api, session_id)
    waits_before = len(workflows.skipped_retry_waits)

    result, status = run_analysis(api, workflows, session_id)

    # Then the Judge step was retried (1 + 2 retries), then the analysis was marked failed
    assert result.status == "FAILED"
    assert len(provider.requests) == 3
    # ...after the ASL's waits: 5 s then 15 s, each with full jitter (skipped here, not slept)
    first, second = workflows.skipped_retry_waits[waits_before:]
    assert 0 <= first <= 5 and 0 <= second <= 15
    assert workflows.states_entered(result.arn) == ["Measure", "Judge", "MarkFailed", "Failed"]
    body = status.json()
    assert (body["status"], body["error"]["code"]) == ("failed", "ProviderError")
    assert body["error"]["reason"] == "The AI service is unavailable right now; nothing was saved. Try again later."
    # ...nothing billed, nothing announced, and the session exactly as it was
    assert bus_events() == []
    assert session_items(aws, api, session_id) == before


def test_a_failed_analysis_can_be_started_again(api: ApiClient, workflows: Workflows, runner: FunctionRunner,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    stub_engine(runner, monkeypatch, Scripted("x", "y", json.dumps(valid_answer())))
    session_id = make_session(api)
    failed, _ = run_analysis(api, workflows, session_id)
    assert failed.status == "FAILED"

    assert api.post(f"/sessions/{session_id}/analysis").status == 202
    assert workflows.wait(executions(workflows, session_id)[0]).status == "SUCCEEDED"
    assert api.get(f"/sessions/{session_id}/analysis").json()["status"] == "completed"
    assert len(executions(workflows, session_id)) == 2


def over_quota(aws: dict[str, str], api: ApiClient) -> None:
    table(aws).put_item(Item={"PK": owner(api), "SK": keys.QUOTA_SK, "monthlyTokens": 1})
    table(aws).put_item(Item={"PK": owner(api), "SK": keys.usage_month_sk(month_of(utcnow())), "totalTokens": 5})


def test_over_quota_is_a_429_before_anything_runs(api: ApiClient, workflows: Workflows, runner: FunctionRunner,
                                                 aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    provider = stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer())))
    session_id = make_session(api)
    over_quota(aws, api)

    error = assert_error(api.post(f"/sessions/{session_id}/analysis"), 429, "QUOTA_EXCEEDED")

    assert "quota" in error["message"].lower()
    assert executions(workflows, session_id) == [] and provider.requests == []


def test_quota_reached_while_running_fails_without_calling_the_model(api: ApiClient, workflows: Workflows,
                                                                     runner: FunctionRunner, aws: dict[str, str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an analysis started within quota, and the quota used up before the judge runs
    provider = stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer())))
    session_id = make_session(api)
    measure = runner.module("AnalysisMeasureFunction")
    measured = measure.handler

    def measure_then_use_up_the_quota(event: Any, context: Any) -> Any:
        result = measured(event, context)
        over_quota(aws, api)
        return result

    monkeypatch.setattr(measure, "handler", measure_then_use_up_the_quota)

    result, status = run_analysis(api, workflows, session_id)

    assert result.status == "FAILED" and provider.requests == []
    assert status.json()["error"]["code"] == "QuotaExceeded"
    assert "quota" in status.json()["error"]["reason"].lower()


# -- refusals -------------------------------------------------------------------------------------
def test_too_little_to_analyse_is_a_422_before_anything_runs(api: ApiClient, workflows: Workflows,
                                                             aws: dict[str, str]) -> None:
    session_id = make_session(api, LEARNER[:2])

    error = assert_error(api.post(f"/sessions/{session_id}/analysis"), 422, "NOT_ENOUGH_TO_ANALYSE")

    assert "2 learner turn" in error["message"]
    assert executions(workflows, session_id) == []
    assert table(aws).get_item(Key={"PK": owner(api), "SK": keys.analysis_sk(session_id)}).get("Item") is None


def test_unknown_or_foreign_sessions_are_404(api: ApiClient, workflows: Workflows) -> None:
    session_id = make_session(api)
    stranger = api.as_device("device-someone-else")

    assert_error(stranger.post(f"/sessions/{session_id}/analysis"), 404, "NOT_FOUND")
    assert_error(stranger.get(f"/sessions/{session_id}/analysis"), 404, "NOT_FOUND")
    assert_error(api.get(f"/sessions/{session_id}/analysis"), 404, "NOT_FOUND")  # not analysed yet
    assert_error(api.post("/sessions/not-a-session-id/analysis"), 404, "NOT_FOUND")
    assert executions(workflows, session_id) == []


def test_deleting_the_session_deletes_its_analysis(api: ApiClient, workflows: Workflows, runner: FunctionRunner,
                                                   aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer())))
    session_id = make_session(api)
    run_analysis(api, workflows, session_id)

    assert api.delete(f"/sessions/{session_id}").status == 204
    assert table(aws).get_item(Key={"PK": owner(api), "SK": keys.analysis_sk(session_id)}).get("Item") is None


# -- progress -------------------------------------------------------------------------------------
def test_progress_shows_the_scores_of_the_latest_sessions_and_their_trend(api: ApiClient, workflows: Workflows,
                                                                          runner: FunctionRunner,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def scored(accuracy: int) -> str:
        answer = valid_answer()
        answer["scores"]["accuracy"] = {"score": accuracy, "reason": "r"}
        return json.dumps(answer)

    stub_engine(runner, monkeypatch, Scripted(scored(3), scored(5), scored(7)))
    for _ in range(3):
        session_id = make_session(api)
        assert api.post(f"/sessions/{session_id}/analysis").status == 202
        workflows.wait(executions(workflows, session_id)[0])
    make_session(api)  # a fourth session, never analysed

    body = api.get("/progress", query="limit=10").json()

    assert body["sessionsExamined"] == 4
    assert [s["accuracy"] for s in body["sessions"]] == [3, 5, 7]  # oldest first
    assert body["trend"]["accuracy"] == {"sessions": 3, "first": 3, "latest": 7, "average": 5.0,
                                         "changePerSession": 2.0}
    assert body["trend"]["pronunciation"]["sessions"] == 0
    assert api.get("/progress", query="limit=2").json()["sessionsExamined"] == 2
    assert_error(api.get("/progress", query="limit=0"), 422, "VALIDATION_ERROR")


def test_a_run_that_no_longer_owns_the_analysis_changes_nothing(api: ApiClient, workflows: Workflows,
                                                                runner: FunctionRunner, aws: dict[str, str],
                                                                bus_events: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a completed analysis
    stub_engine(runner, monkeypatch, Scripted(json.dumps(valid_answer()), json.dumps(valid_answer(cefr="C2")),
                                              "invalid", "invalid"))
    session_id = make_session(api)
    run_analysis(api, workflows, session_id)
    item_key = {"PK": owner(api), "SK": keys.analysis_sk(session_id)}
    saved = table(aws).get_item(Key=item_key)["Item"]

    # When a stale run (another execution name: superseded, or started before the session changed)
    # finishes, successfully or not
    stale = {"owner": owner(api), "sessionId": session_id, "fingerprint": "0123456789abcdef",
             "executionName": f"{session_id}-0123456789abcdef-1"}
    succeeded = workflows.wait(workflows.start(MACHINE, stale, execution_name=stale["executionName"]))
    failed = workflows.wait(workflows.start(MACHINE, {**stale, "executionName": f"{session_id}-stale-2"},
                                            execution_name=f"{session_id}-stale-2"))

    # Then neither overwrote the analysis, and no second AnalysisCompleted was announced
    assert workflows.states_entered(succeeded.arn)[-2:] == ["Save", "Superseded"]
    assert succeeded.status == "SUCCEEDED"
    assert (failed.status, workflows.states_entered(failed.arn)[-2:]) == ("FAILED", ["MarkFailed", "Failed"])
    assert table(aws).get_item(Key=item_key)["Item"] == saved
    assert api.get(f"/sessions/{session_id}/analysis").json()["report"]["cefr"] == "B1"
    assert detail_types(bus_events()).count("AnalysisCompleted") == 1
