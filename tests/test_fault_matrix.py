"""The fault matrix: every task of both workflows, and chat's reply save, under the services' own
failures, injected below the SDK (tests/service_faults.py) on the executed workflows.

For every task: a transient failure (retried, the run completes) and a lasting one (a terminal
state with a reason, cleanup done). Then Collect dying after its write, RecordFailure throttled,
chat's reply save throttled. After each case the same ledger is read:

- leaked audio objects, transcript files and Transcribe jobs: none (a lasting cleanup fault leaves
  exactly the one thing S3 or Transcribe refused to delete, and the execution says CleanupFailed);
- records left ``running``: none (read through the API once the workflow's timeout has passed,
  which resolves a record whose failure could not be saved);
- half-saved facts: none (a transcript under the session without a completed transcription or the
  reverse; a completed analysis without its report or the reverse);
- usage events counted by the usage recorder: exactly the calls that were billed (a job Transcribe
  completed; a model call), whatever was retried.

One emulator serves the module; every case is its own device, so nothing is shared but the code.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from moto import mock_aws

from local_stack.bus import BusRelay
from local_stack.gateway import RestGateway
from local_stack.lambdas import FunctionRunner
from local_stack.resources import provision
from local_stack.speech import NO_OUTPUT, JobFailure, emulate_speech, finish_job, job_state_change
from local_stack.template import Stack
from parley.core import clients
from parley.core.ids import utcnow
from parley.data import keys
from tests.conftest import MOTO_CONFIG, WEBM, ApiClient, test_workflows_of
from tests.service_faults import Fault, ServiceFaults
from tests.test_analysis_judge import Scripted, valid_answer
from tests.test_transcription_workflow import fixture

# Attempts botocore makes for one call of our functions (parley.core.clients: max_attempts counts the retries):
# a fault that outlasts them reaches the function, and the workflow's Retry.
SDK_ATTEMPTS = clients._CONFIG.retries["max_attempts"] + 1
pytestmark = pytest.mark.faults
TRANSCRIPTION = "TranscriptionStateMachine"
ANALYSIS = "AnalysisStateMachine"
STAGE = "test"


# -- the emulator, once for the module --------------------------------------------------------------
class PromptTranscribe:
    """Transcribe as the workflow meets it: each job ends with ``outcome`` and, when ``announce``,
    its job-state event resumes the execution as soon as the execution waits for it (through the
    template's job-events function), so no case waits for the event wait's timeout."""

    def __init__(self, runner: FunctionRunner) -> None:
        self.runner = runner
        self.outcome: Any = fixture("greeting")
        self.announce = True
        self.billed: list[str] = []  # jobs that reached COMPLETED (Transcribe bills those)

    def __call__(self, job: Any) -> Any:
        outcome = self.outcome
        if outcome is not None and not isinstance(outcome, JobFailure):
            self.billed.append(job.transcription_job_name)
        return outcome

    def after(self, service: str, operation: str, body: str) -> None:
        """ServiceFaults' observer: the execution stored its task token -> the job ends, announced."""
        if not (self.announce and (service, operation) == ("dynamodb", "PutItem") and "TRANSCRIBEJOB#" in body):
            return
        name = json.loads(body)["Item"]["PK"]["S"].removeprefix("TRANSCRIBEJOB#")
        status = finish_job(name)
        if status in ("COMPLETED", "FAILED"):
            reason = self.outcome.reason if isinstance(self.outcome, JobFailure) else None
            self.runner.invoke("TranscriptionJobEventsFunction", job_state_change(name, status, reason))


@pytest.fixture(scope="module")
def emulated(stack: Stack, runner: FunctionRunner) -> Iterator[SimpleNamespace]:
    clients.reset()
    faults = ServiceFaults()
    transcribe = PromptTranscribe(runner)
    faults.observers.append(transcribe.after)
    with mock_aws(config=MOTO_CONFIG), faults.installed():  # type: ignore[arg-type]
        names = provision(stack)
        bus = BusRelay(stack, runner).install()
        # A long event wait: only the announced event (or an injected fault) ends it.
        with test_workflows_of(stack, runner, EventWaitSeconds="30").installed() as workflows, \
                emulate_speech(transcribe, speak=False):
            yield SimpleNamespace(names=names, workflows=workflows, gateway=RestGateway(stack, runner), bus=bus,
                                  faults=faults, transcribe=transcribe)
    clients.reset()


@pytest.fixture
def env(emulated: SimpleNamespace, runner: FunctionRunner) -> Iterator[SimpleNamespace]:
    """One case: a new device, no faults, a fresh client cache (botocore's retry quota is per client)."""
    emulated.faults.reset()
    emulated.transcribe.outcome = fixture("greeting")
    emulated.transcribe.announce = True
    emulated.transcribe.billed.clear()
    clients.reset()
    api = ApiClient(emulated.gateway, device_id=f"device-{uuid.uuid4().hex[:12]}")
    yield SimpleNamespace(**vars(emulated), api=api, owner=f"DEVICE#{api.device_id}", runner=runner)
    emulated.faults.clear()


def fn(runner: FunctionRunner, logical_id: str) -> str:
    return runner.spec(logical_id).name


# -- the ledger every case reads --------------------------------------------------------------------
def table(env: SimpleNamespace) -> Any:
    return boto3.resource("dynamodb").Table(env.names["Table"])


def owner_items(env: SimpleNamespace) -> list[dict[str, Any]]:
    return table(env).query(KeyConditionExpression=Key("PK").eq(env.owner), ConsistentRead=True)["Items"]


def usage_counted(env: SimpleNamespace, engine: str) -> list[dict[str, Any]]:
    """The usage events the recorder counted for this case's owner (delivered through the bus)."""
    env.bus.pump()
    return [i for i in owner_items(env) if i["SK"].startswith("USAGE#EVENT#") and i["engine"] == engine]


def leftovers(env: SimpleNamespace, transcription_id: str) -> dict[str, list[str]]:
    owner_path = env.owner.replace("#", "/", 1)
    s3 = boto3.client("s3")
    objects = [o["Key"] for area in ("audio", "uploads", "transcripts")
               for o in s3.list_objects_v2(Bucket=env.names["AudioBucket"],
                                           Prefix=f"{area}/{owner_path}/").get("Contents", [])]
    jobs = boto3.client("transcribe").list_transcription_jobs(JobNameContains=transcription_id)
    return {"objects": [k.split("/")[0] for k in objects],
            "jobs": [j["TranscriptionJobName"] for j in jobs.get("TranscriptionJobSummaries", [])]}


@contextlib.contextmanager
def later(hours: float) -> Iterator[None]:
    """The API's clock ``hours`` ahead (past the workflow's timeout)."""
    import parley.speech.transcription.service as transcription

    ahead = utcnow() + timedelta(hours=hours)
    original = transcription.utcnow
    transcription.utcnow = lambda: ahead  # type: ignore[assignment]
    try:
        yield
    finally:
        transcription.utcnow = original  # type: ignore[assignment]


# -- the transcription workflow -------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    faults: tuple[dict[str, Any], ...]  # Fault(**spec); "function" is a logical id
    status: str = "completed"  # the transcription's status in the end
    execution: str | None = None  # how the execution ended: None = SUCCEEDED, else its error
    reason: str | None = None  # the failure reason's code
    left: tuple[str, ...] = ()  # what a lasting cleanup fault leaves behind: audio, transcripts, job
    outcome: Any = "greeting"  # what Transcribe makes of the job: a fixture name, or a JobFailure
    entered: tuple[str, ...] = ()  # states the execution must have gone through


def f(service: str, operation: str, code: str, times: int | None = 1, **more: Any) -> dict[str, Any]:
    return {"service": service, "operation": operation, "code": code, "times": times, **more}


THROTTLE = "ProvisionedThroughputExceededException"
JOB_FAILED = JobFailure("The media format provided does not match the detected media format.")
NO_EVENT_WAIT = f("dynamodb", "PutItem", THROTTLE, None, key="TRANSCRIBEJOB#")  # the poll takes over
PREPARE, COLLECT = "TranscriptionPrepareFunction", "TranscriptionCollectFunction"
RECORD = "TranscriptionFailureFunction"

TRANSCRIPTION_CASES: dict[str, Case] = {
    # Prepare
    "prepare/lambda-throttled-once": Case((f("lambda", "Invoke", "TooManyRequestsException", key="prepare"),)),
    "prepare/table-throttled-once": Case((f("dynamodb", "UpdateItem", THROTTLE, SDK_ATTEMPTS, function=PREPARE),)),
    "prepare/timed-out-after-marking": Case((f("lambda", "Invoke", "Sandbox.Timedout", key="prepare", after=True),)),
    "prepare/table-throttled": Case((f("dynamodb", "UpdateItem", THROTTLE, None, function=PREPARE),),
                                    "failed", "TranscriptionFailed", "INTERNAL_ERROR"),
    # StartJob
    "start-job/throttled-once": Case((f("transcribe", "StartTranscriptionJob", "LimitExceededException"),)),
    "start-job/answer-lost": Case((f("transcribe", "StartTranscriptionJob", "InternalFailureException", after=True),),
                                  entered=("JobAlreadyStarted",)),
    "start-job/throttled": Case((f("transcribe", "StartTranscriptionJob", "LimitExceededException", None),),
                                "failed", "TranscriptionFailed", "INTERNAL_ERROR"),
    # WaitForJobEvent (its lasting failure hands over to the poll, by design)
    "event-wait/throttled-once": Case((f("dynamodb", "PutItem", THROTTLE, key="TRANSCRIBEJOB#"),)),
    "event-wait/throttled": Case((NO_EVENT_WAIT,), entered=("InitPoll", "GetJob")),
    # GetJob (the poll: the event wait fails at once in these cases)
    "get-job/failing-once": Case((NO_EVENT_WAIT, f("transcribe", "GetTranscriptionJob", "InternalFailureException"))),
    "get-job/throttled": Case((NO_EVENT_WAIT, f("transcribe", "GetTranscriptionJob", "LimitExceededException", None)),
                              "failed", "TranscriptionFailed", "INTERNAL_ERROR"),
    # Collect
    "collect/lambda-throttled-once": Case((f("lambda", "Invoke", "TooManyRequestsException", key="collect"),)),
    "collect/transcript-read-failing-once": Case(
        (f("s3", "GetObject", "InternalError", SDK_ATTEMPTS, key="/transcripts/", function=COLLECT),)),
    "collect/write-throttled-once": Case(
        (f("dynamodb", "TransactWriteItems", THROTTLE, SDK_ATTEMPTS, function=COLLECT),)),
    "collect/write-throttled": Case((f("dynamodb", "TransactWriteItems", THROTTLE, None, function=COLLECT),),
                                    "failed", "TranscriptionFailed", "INTERNAL_ERROR"),
    "collect/dies-after-its-write-once": Case((f("lambda", "Invoke", "Sandbox.Timedout", key="collect", after=True),)),
    "collect/dies-after-its-write": Case(
        (f("lambda", "Invoke", "Sandbox.Timedout", None, key="collect", after=True),),
        entered=("RecordFailure", "Publish")),  # the failure path keeps the completed outcome
    "collect/transcript-missing": Case((), "failed", "TranscriptionFailed", "TranscriptMissing", outcome=NO_OUTPUT),
    "collect/transcript-malformed": Case((), "failed", "TranscriptionFailed", "TranscriptMalformed",
                                          outcome={"results": "not a transcript"}),
    # RecordFailure (after Transcribe failed the job)
    "record-failure/throttled-once": Case((f("dynamodb", "UpdateItem", THROTTLE, SDK_ATTEMPTS, function=RECORD),),
                                          "failed", "TranscriptionFailed", "TranscriptionJobFailed",
                                          outcome=JOB_FAILED),
    "record-failure/throttled": Case((f("dynamodb", "UpdateItem", THROTTLE, None, function=RECORD),),
                                     "failed", "FailureNotRecorded", "TranscriptionInterrupted", outcome=JOB_FAILED,
                                     entered=("FailureNotRecorded", "UnrecordedJobFailure", "DeleteAudio")),
    # Cleanup: each deletion and the event
    "delete-audio/failing-once": Case((f("s3", "DeleteObject", "InternalError", key="/audio/"),)),
    "delete-audio/failing": Case((f("s3", "DeleteObject", "InternalError", None, key="/audio/"),),
                                 execution="CleanupFailed", left=("audio",)),
    "delete-transcript/slow-down-once": Case((f("s3", "DeleteObject", "SlowDown", key="/transcripts/"),)),
    "delete-transcript/failing": Case((f("s3", "DeleteObject", "InternalError", None, key="/transcripts/"),),
                                      execution="CleanupFailed", left=("transcripts",)),
    "delete-job/throttled-once": Case((f("transcribe", "DeleteTranscriptionJob", "LimitExceededException"),)),
    "delete-job/failing": Case((f("transcribe", "DeleteTranscriptionJob", "InternalFailureException", None),),
                               execution="CleanupFailed", left=("job",)),
    "publish/entry-throttled-once": Case((f("eventbridge", "PutEvents", "ThrottlingException", key="TranscriptReady",
                                            entry=True),)),
    "publish/entry-throttled": Case((f("eventbridge", "PutEvents", "ThrottlingException", None, key="TranscriptReady",
                                       entry=True),), execution="CleanupFailed"),
}


def _faults(env: SimpleNamespace, case: Case) -> list[Fault]:
    made = []
    for spec in case.faults:
        spec = dict(spec)
        if spec.get("function"):
            spec["function"] = fn(env.runner, spec["function"])
        if spec.get("service") == "lambda" and spec.get("key"):
            spec["key"] = f"transcription-{spec['key']}"  # the function's name in the Invoke URL
        made.append(Fault(**spec))
    return made


def run_transcription(env: SimpleNamespace, case: Case) -> tuple[str, Any, str]:
    session_id = env.api.post("/sessions", {}).json()["sessionId"]
    env.transcribe.outcome = fixture(case.outcome) if isinstance(case.outcome, str) else case.outcome
    env.faults.add(*_faults(env, case))
    response = env.api.post("/transcriptions", {"audio": base64.b64encode(WEBM).decode(), "sessionId": session_id})
    assert response.status == 202, response.body
    transcription_id = response.json()["transcriptionId"]
    arn = next(a for a in env.workflows.executions(TRANSCRIPTION) if a.endswith(transcription_id))
    result = env.workflows.wait(arn)
    env.faults.clear()
    return transcription_id, result, session_id


@pytest.mark.parametrize("name", list(TRANSCRIPTION_CASES))
def test_transcription_under_faults(env: SimpleNamespace, name: str) -> None:
    case = TRANSCRIPTION_CASES[name]

    transcription_id, result, session_id = run_transcription(env, case)

    # the fault happened, and the execution ended as designed
    assert env.faults.fired or not case.faults, "the fault never fired"
    assert (result.status, result.error) == (("SUCCEEDED", None) if case.execution is None
                                             else ("FAILED", case.execution)), (result, env.faults.fired)
    entered = env.workflows.states_entered(result.arn)
    assert set(case.entered) <= set(entered), entered
    # nothing leaked (but what a lasting cleanup fault refused to delete)
    left = leftovers(env, transcription_id)
    assert sorted(left["objects"]) == sorted(k for k in case.left if k != "job"), left
    assert len(left["jobs"]) == (1 if "job" in case.left else 0), left
    # no record left running, even one whose failure could not be saved (read after the timeout)
    with later(hours=3):
        body = env.api.get(f"/transcriptions/{transcription_id}").json()
    assert body["status"] == case.status, body
    if case.status == "failed":
        assert body["reason"]["code"] == case.reason and body["reason"]["message"], body
    record = table(env).get_item(Key={"PK": env.owner, "SK": keys.transcription_sk(transcription_id)},
                                 ConsistentRead=True)["Item"]
    assert record["status"] == case.status  # saved so, not only answered so
    # nothing half-saved: the transcript is under the session exactly when the transcription completed
    under_session = table(env).get_item(Key={"PK": env.owner,
                                             "SK": keys.session_transcript_sk(session_id, transcription_id)},
                                        ConsistentRead=True).get("Item")
    assert (under_session is not None) == (case.status == "completed")
    # every job Transcribe completed (billed) metered once; no other
    counted = usage_counted(env, "transcribe")
    assert len(counted) == len(env.transcribe.billed), (counted, env.transcribe.billed)
    assert all(e["eventId"] == f"stt-{transcription_id}" for e in counted)


def test_a_transcription_whose_record_is_missing_cleans_up_only_what_exists(env: SimpleNamespace) -> None:
    """An upload under our key layout with no transcription (removed meanwhile): the workflow deletes that
    upload and nothing else (no key or job named "none"), and ends failed, not CleanupFailed."""
    key = f"uploads/{env.owner.replace('#', '/')}/01KAQZ4M7Q0W4V9Y2T3X5B6C8D.webm"
    boto3.client("s3").put_object(Bucket=env.names["AudioBucket"], Key=key, Body=WEBM)
    from tests.test_transcription_workflow import object_created

    result = env.workflows.wait(env.workflows.start(TRANSCRIPTION, object_created(env.names["AudioBucket"], key,
                                                                                    len(WEBM))))

    assert (result.status, result.error) == ("FAILED", "TranscriptionFailed"), result
    entered = env.workflows.states_entered(result.arn)
    assert entered == ["Prepare", "RecordFailure", "WhatToClean?", "DeleteUpload", "Finished?", "TranscriptionFailed"]
    assert leftovers(env, "01KAQZ4M7Q0W4V9Y2T3X5B6C8D") == {"objects": [], "jobs": []}
    assert all(f[1] != "DeleteTranscriptionJob" for f in env.faults.fired)


def test_a_record_nothing_resolves_is_failed_by_the_status_read_after_the_timeout(env: SimpleNamespace) -> None:
    """A record left running (its execution aborted: no task ran after) reads as failed once the workflow's
    timeout has passed, and is saved so; before that it reads as running."""
    record = {"PK": env.owner, "SK": keys.transcription_sk("01KAQZ4M7Q0W4V9Y2T3X5B6C8E"), "type": "TRANSCRIPTION",
              "transcriptionId": "01KAQZ4M7Q0W4V9Y2T3X5B6C8E", "status": "running", "source": "api",
              "format": "webm", "language": "en-US", "audioKey": "audio/x.webm",
              "createdAt": utcnow().isoformat(), "updatedAt": utcnow().isoformat().replace("+00:00", "Z")}
    table(env).put_item(Item=record)
    path = "/transcriptions/01KAQZ4M7Q0W4V9Y2T3X5B6C8E"

    assert env.api.get(path).json()["status"] == "running"
    with later(hours=1.9):
        assert env.api.get(path).json()["status"] == "running"  # the workflow may still run
    with later(hours=2.2):
        body = env.api.get(path).json()
    assert (body["status"], body["reason"]["code"]) == ("failed", "TranscriptionInterrupted")
    assert table(env).get_item(Key={"PK": env.owner, "SK": record["SK"]})["Item"]["status"] == "failed"


def test_a_job_completed_after_its_workflow_gave_up_is_metered_and_cleaned_up(env: SimpleNamespace) -> None:
    """The polls run out while Transcribe still works (and refuses to delete a job in progress); the job
    completes later: its event finds the workflow over, and the job-events function meters it (Transcribe
    billed it) and deletes its transcript file and the job."""
    case = Case((NO_EVENT_WAIT, f("transcribe", "DeleteTranscriptionJob", "BadRequestException", None)),
                "failed", "TranscriptionFailed", "TranscriptionTimedOut", outcome=None)  # type: ignore[arg-type]
    transcription_id, result, _session = run_transcription(env, case)
    assert (result.status, result.error) == ("FAILED", "TranscriptionFailed") and usage_counted(env, "transcribe") == []
    name = f"parley-{STAGE}-{transcription_id}"
    assert leftovers(env, transcription_id)["jobs"] == [name]

    env.transcribe.outcome = fixture("greeting")
    assert finish_job(name) == "COMPLETED"
    handled = env.runner.invoke("TranscriptionJobEventsFunction", job_state_change(name, "COMPLETED"))

    assert handled["outcome"] == "finished-late"
    assert leftovers(env, transcription_id) == {"objects": [], "jobs": []}
    assert [e["eventId"] for e in usage_counted(env, "transcribe")] == [f"stt-{transcription_id}"]
    body = env.api.get(f"/transcriptions/{transcription_id}").json()
    assert (body["status"], body["reason"]["code"]) == ("failed", "TranscriptionTimedOut")  # the outcome stands
    # the same event again (EventBridge delivers at least once) finds nothing left to do
    assert env.runner.invoke("TranscriptionJobEventsFunction",
                             job_state_change(name, "COMPLETED"))["outcome"] == "not-waiting"


# -- the analysis workflow --------------------------------------------------------------------------
LEARNER = ["I go to the market yesterday with my sister.", "We bought a lot of apples and the weather was good.",
           "Um, it was, like, more better than last week because the sun was shining."]


@dataclass(frozen=True)
class AnalysisCase:
    faults: tuple[dict[str, Any], ...]
    status: str = "completed"
    execution: str | None = None
    calls: int = 1  # model calls made (each billed, each metered)
    answers: tuple[Any, ...] = field(default_factory=lambda: (json.dumps(valid_answer()),))


MEASURE, JUDGE, SAVE, FAIL = ("AnalysisMeasureFunction", "AnalysisJudgeFunction", "AnalysisSaveFunction",
                              "AnalysisFailFunction")
ANALYSIS_CASES: dict[str, AnalysisCase] = {
    "measure/table-throttled-once": AnalysisCase((f("dynamodb", "Query", THROTTLE, SDK_ATTEMPTS, function=MEASURE),)),
    "measure/table-throttled": AnalysisCase((f("dynamodb", "Query", THROTTLE, None, function=MEASURE),),
                                            "failed", "AnalysisFailed", calls=0),
    "judge/lambda-throttled-once": AnalysisCase((f("lambda", "Invoke", "TooManyRequestsException", key="judge"),)),
    "judge/timed-out-once": AnalysisCase((f("lambda", "Invoke", "Sandbox.Timedout", key="judge", after=True),),
                                         calls=2, answers=(json.dumps(valid_answer()),) * 2),
    "judge/lambda-throttled": AnalysisCase((f("lambda", "Invoke", "TooManyRequestsException", None, key="judge"),),
                                           "failed", "AnalysisFailed", calls=0),
    "save/table-throttled-once": AnalysisCase((f("dynamodb", "UpdateItem", THROTTLE, SDK_ATTEMPTS, function=SAVE),)),
    "save/table-throttled": AnalysisCase((f("dynamodb", "UpdateItem", THROTTLE, None, function=SAVE),),
                                         "failed", "AnalysisFailed"),
    "publish/entry-throttled-once": AnalysisCase((f("eventbridge", "PutEvents", "ThrottlingException",
                                                    key="AnalysisCompleted", entry=True),)),
    "publish/entry-throttled": AnalysisCase((f("eventbridge", "PutEvents", "ThrottlingException", None,
                                               key="AnalysisCompleted", entry=True),),
                                            execution="AnalysisCompletedNotPublished"),
    "mark-failed/throttled-once": AnalysisCase(
        (f("dynamodb", "UpdateItem", THROTTLE, None, function=SAVE),
         f("dynamodb", "UpdateItem", THROTTLE, SDK_ATTEMPTS, function=FAIL)), "failed", "AnalysisFailed"),
    "mark-failed/throttled": AnalysisCase(
        (f("dynamodb", "UpdateItem", THROTTLE, None, function=SAVE),
         f("dynamodb", "UpdateItem", THROTTLE, None, function=FAIL)), "failed", "AnalysisFailed"),
}


@pytest.mark.parametrize("name", list(ANALYSIS_CASES))
def test_analysis_under_faults(env: SimpleNamespace, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    case = ANALYSIS_CASES[name]
    provider = Scripted(*case.answers)
    monkeypatch.setattr(env.runner.module(JUDGE), "engine", lambda: provider)
    session_id = env.api.post("/sessions", {"topic": "daily"}).json()["sessionId"]
    for text in LEARNER:
        assert env.api.post(f"/sessions/{session_id}/messages", {"role": "user", "content": text}).status == 201
    before = [i for i in owner_items(env) if session_id in i["SK"]]
    specs = [dict(s) for s in case.faults]
    for spec in specs:
        if spec.get("function"):
            spec["function"] = fn(env.runner, spec["function"])
        if spec["service"] == "lambda":
            spec["key"] = f"analysis-{spec['key']}"
    env.faults.add(*[Fault(**s) for s in specs])

    started = env.api.post(f"/sessions/{session_id}/analysis")
    assert started.status == 202, started.body
    arn = next(a for a in env.workflows.executions(ANALYSIS) if f":{session_id}-" in a)
    result = env.workflows.wait(arn)
    env.faults.clear()

    expected = ("SUCCEEDED", None) if case.status == "completed" and case.execution is None else (
        "FAILED", case.execution or "AnalysisFailed")
    assert (result.status, result.error) == expected, (result, env.faults.fired)
    # no analysis left running: as read (after the workflow's timeout for one whose failure was not saved)
    import parley.analysis.service as service

    status = env.api.get(f"/sessions/{session_id}/analysis").json()
    if status["status"] == "running":
        monkeypatch.setattr(service, "utcnow", lambda: utcnow() + timedelta(minutes=30))
        status = env.api.get(f"/sessions/{session_id}/analysis").json()
    assert status["status"] == case.status, status
    # nothing half-saved: a report exactly when completed; the session itself untouched
    item = table(env).get_item(Key={"PK": env.owner, "SK": keys.analysis_sk(session_id)})["Item"]
    assert ("report" in item) == (item["status"] == "completed")
    assert [i for i in owner_items(env) if session_id in i["SK"] and i["SK"] != keys.analysis_sk(session_id)] == [
        i for i in before if i["SK"] != keys.analysis_sk(session_id)]
    # every model call metered once
    assert len(provider.requests) == case.calls
    assert len(usage_counted(env, "bedrock")) == case.calls


# -- chat's reply save ------------------------------------------------------------------------------
def _chat(env: SimpleNamespace, session_id: str, message_id: str) -> Any:
    return env.api.post("/chat", {"sessionId": session_id, "message": "I visited Rome last spring.",
                                  "messageId": message_id})


def _reply_save(env: SimpleNamespace, times: int | None) -> Fault:
    """The chat function's transaction that saves the tutor's reply (its marker names the reply id)."""
    return Fault("dynamodb", "TransactWriteItems", THROTTLE, times, function=fn(env.runner, "ChatFunction"),
                 key="MSGID#reply-")


@pytest.fixture
def chat_backoff(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The chat function's backoff between saves, recorded instead of slept."""
    module = env.runner.module("ChatFunction")
    original, slept = module.chat_from, []

    def chat_from(env: Any, store: Any) -> Any:
        chat = original(env, store)
        chat.sleep = slept.append
        return chat

    monkeypatch.setattr(module, "chat_from", chat_from)
    return slept


@pytest.mark.parametrize("times", [SDK_ATTEMPTS, None], ids=["throttled-once", "throttled"])
def test_chat_reply_save_under_throttling(env: SimpleNamespace, times: int | None, chat_backoff: list[float]) -> None:
    session_id = env.api.post("/sessions", {}).json()["sessionId"]
    env.faults.add(_reply_save(env, times))

    first = _chat(env, session_id, "rome-0000001")
    env.faults.clear()

    assert first.status == 200, first.body
    body = first.json()
    assert body["reply"] and body["message"]["messageId"] == "rome-0000001"
    saved_now = times is not None
    assert body["replySaved"] is saved_now and (body["replyMessage"] is not None) is saved_now
    # a repeat of the call (the store is back) saves the same reply without asking the model again
    again = _chat(env, session_id, "rome-0000001").json()
    assert (again["replayed"], again["replySaved"], again["reply"]) == (True, True, body["reply"])
    messages = env.api.get(f"/sessions/{session_id}").json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [("user", "I visited Rome last spring."),
                                                             ("assistant", body["reply"])]
    assert len(usage_counted(env, "offline")) == 1  # one model call, metered once
    assert not [i for i in owner_items(env) if "#PENDINGREPLY#" in i["SK"]]


def test_chat_reply_kept_nowhere_is_answered_again(env: SimpleNamespace, chat_backoff: list[float]) -> None:
    """If even keeping the unsaved reply fails, the answer says so (replySaved false) and a repeat asks the
    model again: two calls billed, two metered, one reply saved."""
    session_id = env.api.post("/sessions", {}).json()["sessionId"]
    env.faults.add(_reply_save(env, None), Fault("dynamodb", "PutItem", THROTTLE, None,
                                                 function=fn(env.runner, "ChatFunction"), key="#PENDINGREPLY#"))
    first = _chat(env, session_id, "rome-0000002").json()
    env.faults.clear()
    again = _chat(env, session_id, "rome-0000002").json()

    assert first["replySaved"] is False and (again["replayed"], again["replySaved"]) == (False, True)
    assert [m["role"] for m in env.api.get(f"/sessions/{session_id}").json()["messages"]] == ["user", "assistant"]
    assert len(usage_counted(env, "offline")) == 2

