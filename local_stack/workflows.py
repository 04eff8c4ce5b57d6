"""Run the template's state machines on moto, with their Lambda tasks running our handlers in-process.

moto 5 executes ASL (``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``), each
execution in a daemon thread. Two things are missing for our workflows, and this module adds them:

- moto's Lambda backend only echoes (or needs Docker). ``Workflows.installed()`` patches
  ``LambdaBackend.invoke`` (and ``LambdaSimpleBackend.invoke``) so an invocation of a function of the
  template — by name or ARN, from a ``Resource: <function arn>`` task or ``arn:aws:states:::lambda:invoke``
  — runs ``FunctionRunner.invoke`` in this process. A handler's exception becomes what Lambda
  returns for it (``FunctionError: Unhandled``, ``{"errorType": <class name>, "errorMessage": ...}``),
  so the ASL's Retry/Catch by error name behave as in AWS. Other functions fall back to moto.
- moto spells aws-sdk task errors ``transcribe.BadRequestException``; AWS spells them
  ``Transcribe.BadRequestException`` — patched for the services in ``SERVICE_ERROR_NAMES``.
- a deterministic wait: each execution's worker thread is recorded, and ``wait`` joins it (bounded
  by ``timeout``), then reads the result through the Step Functions API (so a result that AWS could
  not serialise fails here too). No sleeping in tests.
- ``retry_waits=False`` (what tests use): moto's interpreter really sleeps each Retry's interval;
  this keeps every retry and skips its wait, recording it in ``skipped_retry_waits``.

Every ``AWS::Serverless::StateMachine`` (and ``AWS::StepFunctions::StateMachine``) of the template is
created from its ``DefinitionUri`` file (or inline ``Definition``) with ``DefinitionSubstitutions``
resolved through ``Stack.resolve``, exactly as SAM substitutes ``${Name}`` in the definition text;
``substitutions=`` overrides some (e.g. a poll interval of 0 s in tests).

Use (tests get this as the ``workflows`` fixture of tests/conftest.py)::

    with mock_aws(config=MOTO_CONFIG):
        provision(stack)
        with Workflows(stack, runner, substitutions={"PollIntervalSeconds": "0"}).installed() as wf:
            arn = wf.start("TranscriptionStateMachine", {"transcriptionId": "..."})  # logical id or name
            result = wf.wait(arn)                      # Result(status, output, error, cause)
            status, output = wf.run("TranscriptionStateMachine", {...})  # start + wait
            wf.history(arn)                            # the execution's events (dicts, as boto3 returns)
            wf.states_entered(arn)                     # ["Prepare", "StartJob", ...] in order
            wf.executions("TranscriptionStateMachine") # every execution's ARN, started by anyone

Executions started by our own handlers (``states:StartExecution`` through boto3) are the same
executions: ``wait`` works on any ARN. On exit, executions still running are stopped and joined.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from unittest import mock

import boto3

from .lambdas import FunctionRunner
from .template import ROOT, Stack

STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
DEFAULT_TIMEOUT = 60.0  # only bounds a hung execution; a passing wait returns as soon as it ends
SERVICE_ERROR_NAMES = {"transcribe": "Transcribe", "s3": "S3", "polly": "Polly"}


@dataclass(frozen=True)
class Result:
    """How an execution ended, as ``DescribeExecution`` reports it."""

    arn: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, ABORTED (RUNNING only from ``describe``)
    output: Any = None
    error: str | None = None
    cause: str | None = None


def substitute(definition: str, values: Mapping[str, Any]) -> str:
    """SAM's DefinitionSubstitutions: replace ``${Name}`` for each given name, leave others alone."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values else match.group(0)

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition)


def definition_of(stack: Stack, logical_id: str, substitutions: Mapping[str, Any] | None = None) -> str:
    """The definition text of a state machine of the template, substitutions applied."""
    props = stack.resources[logical_id].get("Properties") or {}
    if "DefinitionUri" in props:
        uri = stack.resolve(props["DefinitionUri"])
        if not isinstance(uri, str):
            raise ValueError(f"{logical_id}: only a local DefinitionUri file is supported, not {uri!r}")
        text = (ROOT / uri).read_text(encoding="utf-8")
    elif "Definition" in props:
        text = json.dumps(props["Definition"])
    elif "DefinitionString" in props:
        text = str(stack.resolve(props["DefinitionString"]))
    else:
        raise ValueError(f"{logical_id} has no definition")
    values = {k: stack.resolve(v) for k, v in (props.get("DefinitionSubstitutions") or {}).items()}
    values.update(substitutions or {})
    result = substitute(text, values)
    json.loads(result)  # a definition that is not JSON after substitution is a template bug: say so here
    return result


def _function_name(name_or_arn: str) -> str:
    """``arn:aws:lambda:r:a:function:NAME[:qualifier]`` or ``NAME[:qualifier]`` -> ``NAME``."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn.split(":")[0]


def _lambda_response(runner: FunctionRunner, body: Any, response_headers: dict[str, str],
                     function: str) -> bytes:
    raw = body.decode() if isinstance(body, bytes) else (body or "")
    event = json.loads(raw) if raw else {}
    try:
        result = runner.invoke(function, event)
    except Exception as exc:  # what Lambda answers for an unhandled exception of a Python handler
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": []}).encode()
    return json.dumps(result).encode()


def _lambda_service_failure(env: Any, ex: Any) -> Any:
    """The failure AWS records when Lambda itself refuses an invocation (throttling, a 5xx):
    ``Lambda.<code>``, for a ``"Resource": <function ARN>`` task as for ``lambda:invoke``."""
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error = f"Lambda.{ex.response.get('Error', {}).get('Code', 'Unknown')}"
    cause = str(ex.response.get("Error", {}).get("Message", ""))
    # EventDetails is a TypedDict of every event's details, all optional in AWS's model (mypy sees them required)
    details = cast("EventDetails", {"lambdaFunctionFailedEventDetails": LambdaFunctionFailedEventDetails(
        error=error, cause=cause)})
    return FailureEvent(env=env, error_name=CustomErrorName(error), event_type=HistoryEventType.LambdaFunctionFailed,
                        event_details=details)


_VALID_DEFINITIONS: set[str] = set()


def _validated(validate: Callable[..., None]) -> Callable[..., None]:
    def validate_once(definition: str) -> None:
        if definition not in _VALID_DEFINITIONS:
            validate(definition=definition)  # raises InvalidDefinition for a bad one, which is not cached
            _VALID_DEFINITIONS.add(definition)

    return validate_once


class Workflows:
    """The template's state machines on moto. See the module docstring."""

    def __init__(self, stack: Stack, runner: FunctionRunner, *, substitutions: Mapping[str, Any] | None = None,
                 session: boto3.session.Session | None = None, retry_waits: bool = True) -> None:
        self.stack = stack
        self.runner = runner
        self.substitutions = dict(substitutions or {})
        self.retry_waits = retry_waits
        self.skipped_retry_waits: list[float] = []  # with retry_waits=False: what each Retry would have slept
        self.session = session or boto3.session.Session(region_name=stack.region)
        self.arns: dict[str, str] = {}  # logical id -> state machine ARN
        self._names: dict[str, str] = {}  # physical name -> logical id

    # -- setup ------------------------------------------------------------------------------------
    def role_arn(self, logical_id: str) -> str:
        return f"arn:aws:iam::{self.stack.account}:role/{self.stack.physical_name(logical_id)}-role"

    def create(self) -> dict[str, str]:
        """Create every state machine of the template in moto; returns {logical id: ARN}."""
        sfn = self.session.client("stepfunctions")
        for logical_id, resource in self.stack.resources.items():
            if resource["Type"] not in STATE_MACHINE_TYPES or not self.stack.enabled(logical_id):
                continue
            name = self.stack.physical_name(logical_id)
            created = sfn.create_state_machine(
                name=name, definition=definition_of(self.stack, logical_id, self.substitutions),
                roleArn=self.role_arn(logical_id),
                type=(resource.get("Properties") or {}).get("Type", "STANDARD"))
            self.arns[logical_id] = created["stateMachineArn"]
            self._names[name] = logical_id
        return dict(self.arns)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Workflows]:
        """Inside an active ``mock_aws``: route Lambda tasks to our handlers, record execution
        threads, create the state machines; on exit stop what still runs and undo the patches."""
        from botocore.exceptions import ClientError
        from moto.awslambda.models import LambdaBackend
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend
        from moto.stepfunctions.parser.utils import TMP_THREADS

        runner = self.runner

        def patched_invoke(original: Callable[..., Any]) -> Callable[..., Any]:
            def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                       response_headers: dict[str, str]) -> bytes | str | None:
                name = _function_name(function_name)
                if name not in runner.by_name and name not in runner.specs:
                    return original(backend, function_name, qualifier, body, headers, response_headers)  # type: ignore[no-any-return]
                if (headers or {}).get("X-Amz-Invocation-Type") == "Event":
                    threading.Thread(target=_lambda_response, args=(runner, body, {}, name), daemon=True).start()
                    return b""
                return _lambda_response(runner, body, response_headers, name)

            return invoke

        def start_worker(worker: Any) -> None:
            thread = threading.Thread(target=worker._execution_logic, daemon=True, name="sfn-execution")
            TMP_THREADS.append(thread)
            worker.parley_thread = thread
            thread.start()

        with contextlib.ExitStack() as patches:
            patches.enter_context(mock.patch.object(
                LambdaBackend, "invoke", patched_invoke(LambdaBackend.invoke)))
            patches.enter_context(mock.patch.object(
                LambdaSimpleBackend, "invoke", patched_invoke(LambdaSimpleBackend.invoke)))
            patches.enter_context(mock.patch.object(ExecutionWorker, "start", start_worker))
            # AWS names aws-sdk task errors <Service>.<Exception> ("Transcribe.BadRequestException");
            # moto knows only a few services' spelling and falls back to the lower-case name.
            from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
                state_task_service_aws_sdk as aws_sdk,
            )

            patches.enter_context(mock.patch.dict(aws_sdk._SERVICE_ERROR_NAMES, SERVICE_ERROR_NAMES))
            # A Lambda service error (throttling, 5xx) of a "Resource": <function ARN> task is named
            # Lambda.<code> in AWS, as for arn:aws:states:::lambda:invoke; moto names it "Exception".
            original_lambda_error = StateTaskLambda._from_error

            def lambda_task_error(task: Any, env: Any, ex: Exception) -> Any:
                if isinstance(ex, ClientError):
                    return _lambda_service_failure(env, ex)
                return original_lambda_error(task, env, ex)

            patches.enter_context(mock.patch.object(StateTaskLambda, "_from_error", lambda_task_error))
            # CreateStateMachine parses the definition only to validate it (~0.2 s each): once per text.
            patches.enter_context(mock.patch.object(
                StepFunctionsParserBackend, "_validate_definition",
                staticmethod(_validated(StepFunctionsParserBackend._validate_definition))))
            if not self.retry_waits:
                # moto's interpreter really sleeps a Retry's interval (the analysis Judge's: 5 s, then 15 s):
                # tests keep every retry and skip the wait, recording it instead.
                from types import SimpleNamespace

                from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

                patches.enter_context(mock.patch.object(
                    retrier_decl, "time", SimpleNamespace(sleep=self.skipped_retry_waits.append)))
            self.create()
            try:
                yield self
            finally:
                self._stop_all()

    # -- executions -------------------------------------------------------------------------------
    def arn_of(self, name: str) -> str:
        """A state machine's ARN from its logical id, physical name or ARN."""
        if name.startswith("arn:"):
            return name
        logical = name if name in self.arns else self._names.get(name)
        if logical is None:
            raise KeyError(f"No state machine {name!r}; known: {sorted(self.arns)}")
        return self.arns[logical]

    def start(self, name: str, payload: Any = None, *, execution_name: str | None = None) -> str:
        """Start an execution; returns its ARN."""
        # Step Functions names an unnamed execution with a UUID; moto would name it "None".
        kwargs: dict[str, Any] = {"stateMachineArn": self.arn_of(name), "input": json.dumps(payload or {}),
                                  "name": execution_name or str(uuid.uuid4())}
        return str(self.session.client("stepfunctions").start_execution(**kwargs)["executionArn"])

    def _backend(self) -> Any:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        return stepfunctions_parser_backends[self.stack.account][self.stack.region]

    def _execution(self, arn: str) -> Any:
        return self._backend().describe_execution(arn)

    def describe(self, arn: str) -> Result:
        found = self.session.client("stepfunctions").describe_execution(executionArn=arn)
        output = json.loads(found["output"]) if found.get("output") else None
        return Result(arn=arn, status=found["status"], output=output, error=found.get("error"),
                      cause=found.get("cause"))

    def wait(self, arn: str, *, timeout: float = DEFAULT_TIMEOUT) -> Result:
        """Join the execution's thread (at most ``timeout`` seconds) and return how it ended.

        Raises ``TimeoutError`` if it is still running then (e.g. waiting for a task token)."""
        thread = getattr(self._execution(arn).exec_worker, "parley_thread", None)
        if thread is None:
            raise RuntimeError("This execution was started outside Workflows.installed(); cannot join it.")
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"Execution {arn} still running after {timeout} s; "
                               f"states so far: {self.states_entered(arn)}")
        return self.describe(arn)

    def wait_for_state(self, arn: str, state: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Return once the execution has entered ``state`` (e.g. a ``.waitForTaskToken`` task).

        Polls the execution's in-memory history every 5 ms, bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while state not in self.states_entered(arn):
            thread = getattr(self._execution(arn).exec_worker, "parley_thread", None)
            if time.monotonic() > deadline or (thread is not None and not thread.is_alive()):
                raise TimeoutError(f"Execution {arn} did not enter {state!r}; entered: {self.states_entered(arn)}")
            time.sleep(0.005)

    def run(self, name: str, payload: Any = None, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[str, Any]:
        """Start, wait, and return (status, output); output is None unless it succeeded."""
        result = self.wait(self.start(name, payload), timeout=timeout)
        return result.status, result.output

    def history(self, arn: str) -> list[dict[str, Any]]:
        client = self.session.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = client.get_execution_history(**kwargs)
            events.extend(dict(e) for e in page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def states_entered(self, arn: str) -> list[str]:
        """Names of the states entered, in order (from the history)."""
        return [e["stateEnteredEventDetails"]["name"] for e in self.history(arn) if "stateEnteredEventDetails" in e]

    def transitions(self, arn: str) -> int:
        """State transitions billed for a Standard execution: one per state entered."""
        return len(self.states_entered(arn))

    def executions(self, name: str) -> list[str]:
        """Every execution of a state machine, newest first."""
        client = self.session.client("stepfunctions")
        return [e["executionArn"] for e in client.list_executions(stateMachineArn=self.arn_of(name))["executions"]]

    def _stop_all(self) -> None:
        backend = self._backend()
        for state_machine in list(backend.state_machines):
            for execution in list(state_machine.executions):
                thread = getattr(execution.exec_worker, "parley_thread", None)
                if thread is None or not thread.is_alive():
                    continue
                with contextlib.suppress(Exception):
                    backend.stop_execution(execution.exec_arn)
                thread.join(2)


def state_machine_files(stack: Stack) -> dict[str, Path]:
    """{logical id: definition file} for the template's state machines that use DefinitionUri."""
    return {lid: ROOT / str(stack.resolve(r["Properties"]["DefinitionUri"]))
            for lid, r in stack.resources.items()
            if r["Type"] in STATE_MACHINE_TYPES and "DefinitionUri" in (r.get("Properties") or {})}


# -- the local stack (make run) ---------------------------------------------------------------------
LOCAL_SUBSTITUTIONS = {"PollIntervalSeconds": "1", "PollMaxIntervalSeconds": "2", "EventWaitSeconds": "30"}


def s3_rules(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    """(state machine logical id, event pattern) for each EventBridgeRule event that matches S3 events."""
    found = []
    for logical_id, resource in stack.resources.items():
        if resource["Type"] not in STATE_MACHINE_TYPES or not stack.enabled(logical_id):
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") == "EventBridgeRule":
                pattern = stack.resolve(event["Properties"]["Pattern"])
                if "aws.s3" in pattern.get("source", []):
                    found.append((logical_id, pattern))
    return found


def object_created_event(stack: Stack, bucket: str, key: str, size: int) -> dict[str, Any]:
    """The "Object Created" event S3 sends to EventBridge (the documented shape)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
            "account": stack.account, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": stack.region, "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": size, "etag": "local", "sequencer": "0"},
                       "request-id": "local", "requester": stack.account, "reason": "PutObject"}}


@contextlib.contextmanager
def s3_to_state_machines(workflows: Workflows) -> Iterator[None]:
    """moto's EventBridge does not deliver to Step Functions: deliver S3 "Object Created" events to
    the state machines whose EventBridgeRule matches them, as the rule would in AWS."""
    from moto.events.models import EventPattern
    from moto.s3.models import S3Backend

    rules = [(logical_id, EventPattern.load(json.dumps(pattern))) for logical_id, pattern in s3_rules(workflows.stack)]
    original = S3Backend.put_object

    def put_object(backend: Any, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
        stored = original(backend, bucket_name, key_name, value, *args, **kwargs)
        event = object_created_event(workflows.stack, bucket_name, key_name, len(value))
        for logical_id, pattern in rules:
            if logical_id in workflows.arns and pattern.matches_event(event):  # type: ignore[arg-type]
                workflows._backend().start_execution(workflows.arns[logical_id], str(uuid.uuid4()), json.dumps(event))
        return stored

    with mock.patch.object(S3Backend, "put_object", put_object):
        yield


def attach(local: Any) -> None:
    """Hook for local_stack.server.LocalStack: the template's state machines, executing in moto's
    server (same process), Lambda tasks in-process, S3 uploads starting their workflows."""
    port = local.moto_endpoint.rsplit(":", 1)[1]
    os.environ["MOTO_PORT"] = port  # moto's Step Functions tasks call AWS through the moto server on this port
    resources = contextlib.ExitStack()
    workflows = resources.enter_context(
        Workflows(local.stack, local.runner, substitutions=LOCAL_SUBSTITUTIONS).installed())
    resources.enter_context(s3_to_state_machines(workflows))
    local.workflows = workflows
    local.on_stop(resources.close)
