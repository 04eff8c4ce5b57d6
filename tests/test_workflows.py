"""local_stack.workflows: the template's state machines on moto, Lambda tasks run in-process."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from local_stack.lambdas import FunctionRunner
from local_stack.template import ROOT, Stack
from local_stack.workflows import Workflows, definition_of, substitute
from tests.conftest import TEST_PARAMETERS

DEFINITION = {
    "StartAt": "Authorize",
    "States": {
        "Authorize": {
            "Type": "Task", "Resource": "${AuthorizerArn}", "ResultPath": "$.policy",
            "Catch": [{"ErrorEquals": ["Exception"], "ResultPath": "$.error", "Next": "Refused"}],
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 0, "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"owner.$": "$.policy.context.owner", "tag": "${Tag}"}, "End": True},
        "Refused": {"Type": "Fail", "Error": "Refused", "Cause": "authorizer said no"},
    },
}


@pytest.fixture
def test_stack(tmp_path: Path) -> Stack:
    """The real template plus one small state machine whose task is the real authorizer function."""
    template = copy.deepcopy(Stack(parameters=TEST_PARAMETERS).template)
    definition = tmp_path / "probe.asl.json"
    definition.write_text(json.dumps(DEFINITION))
    template["Resources"]["ProbeStateMachine"] = {"Type": "AWS::Serverless::StateMachine", "Properties": {
        "Name": {"Fn::Sub": "parley-${Stage}-probe"},
        "DefinitionUri": str(definition.relative_to(ROOT)) if definition.is_relative_to(ROOT) else str(definition),
        "DefinitionSubstitutions": {"AuthorizerArn": {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}, "Tag": "x"},
    }}
    return Stack(template, parameters=TEST_PARAMETERS)


def test_substitute_replaces_only_given_names() -> None:
    assert substitute('{"a": "${A}", "b": "${B}"}', {"A": 1}) == '{"a": "1", "b": "${B}"}'


def test_definition_resolves_substitutions_through_the_stack(test_stack: Stack) -> None:
    definition = json.loads(definition_of(test_stack, "ProbeStateMachine", {"Tag": "override"}))
    assert definition["States"]["Authorize"]["Resource"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:parley-test-authorizer")
    assert definition["States"]["Done"]["Parameters"]["tag"] == "override"


def test_lambda_task_runs_the_handler_in_process(test_stack: Stack, aws: dict[str, str]) -> None:
    runner = FunctionRunner(test_stack)
    with Workflows(test_stack, runner).installed() as wf:
        status, output = wf.run("ProbeStateMachine", {"type": "REQUEST", "methodArn": "arn:x/dev/GET/settings",
                                                      "headers": {"X-Device-Id": "device-12345678"}})
        assert (status, output) == ("SUCCEEDED", {"owner": "DEVICE#device-12345678", "tag": "x"})
        assert [name for name, _ in runner.invocations] == ["AuthorizerFunction"]
        assert wf.states_entered(wf.executions("parley-test-probe")[0]) == ["Authorize", "Pause", "Done"]


def test_a_handler_exception_is_a_lambda_error_named_after_its_class(test_stack: Stack,
                                                                     aws: dict[str, str]) -> None:
    with Workflows(test_stack, FunctionRunner(test_stack)).installed() as wf:
        result = wf.wait(wf.start("ProbeStateMachine", {"type": "REQUEST", "headers": {}}))
        assert (result.status, result.error) == ("FAILED", "Refused")
        assert wf.states_entered(result.arn) == ["Authorize", "Refused"]
