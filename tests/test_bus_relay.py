"""local_stack/bus.py: events reach the targets the template wires, as EventBridge would deliver them.

A small template of its own keeps these tests independent of the app's rules: S3 -> default bus ->
rule -> state machine (with an input transformer), and a custom bus -> function rule whose function
fails and is dead-lettered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_stack.bus import BusRelay
from local_stack.lambdas import FunctionRunner
from local_stack.resources import provision
from local_stack.template import Stack

PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
TEMPLATE: dict[str, Any] = {
    "Parameters": {"Stage": {"Type": "String", "Default": "relay"}},
    "Resources": {
        "Uploads": {"Type": "AWS::S3::Bucket", "Properties": {
            "BucketName": "parley-relay-uploads",
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}}},
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "parley-relay"}},
        "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "parley-relay-dlq"}},
        "Workflow": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"StateMachineName": "relay-flow"}},
        "UploadRule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                             "detail": {"object": {"key": [{"prefix": "uploads/"}]}}},
            "Targets": [{"Id": "flow", "Arn": {"Fn::GetAtt": ["Workflow", "Arn"]},
                         "InputTransformer": {"InputPathsMap": {"key": "$.detail.object.key"},
                                              "InputTemplate": '{"audioKey": "<key>"}'}}]}},
        "Broken": {"Type": "AWS::Serverless::Function", "Properties": {
            "FunctionName": "parley-relay-broken", "CodeUri": "functions/usage_recorder/", "Handler": "app.handler",
            "Environment": {"Variables": {"TABLE_NAME": "parley-relay-none"}},
            "DeadLetterQueue": {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}},
            "EventInvokeConfig": {"MaximumRetryAttempts": 1},
            "Events": {"Anything": {"Type": "EventBridgeRule", "Properties": {
                "EventBusName": {"Ref": "Bus"}, "Pattern": {"source": ["relay.test"]}, "InputPath": "$.detail"}}}}},
    },
}


@pytest.fixture
def relay() -> Iterator[BusRelay]:
    stack = Stack(TEMPLATE, parameters={"Stage": "relay"})
    with mock_aws():
        provision(stack)
        boto3.client("stepfunctions").create_state_machine(
            name="relay-flow", definition=PASS, roleArn="arn:aws:iam::123456789012:role/relay")
        yield BusRelay(stack, FunctionRunner(stack)).install()


def test_s3_uploads_start_the_state_machine_with_the_transformed_input(relay: BusRelay) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket="parley-relay-uploads", Key="uploads/a.wav", Body=b"RIFF")
    s3.put_object(Bucket="parley-relay-uploads", Key="elsewhere/b.wav", Body=b"RIFF")  # not matched
    relay.pump()
    sfn = boto3.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert len(executions) == 1
    started = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(started["input"]) == {"audioKey": "uploads/a.wav"}


def test_a_failing_function_is_retried_then_dead_lettered(relay: BusRelay) -> None:
    boto3.client("events").put_events(Entries=[{"Source": "relay.test", "DetailType": "Anything",
                                                "Detail": json.dumps({"n": 1}), "EventBusName": "parley-relay"}])
    relay.pump()
    (delivery,) = relay.deliveries
    assert delivery.error and delivery.target.endswith(":function:parley-relay-broken")
    # 1 try + 1 retry (EventInvokeConfig), with the InputPath applied, then the function's DLQ
    invoked = [event for fn, event in relay.runner.invocations if fn == "Broken"]
    assert invoked == [{"n": 1}, {"n": 1}]
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="parley-relay-dlq")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"]) == {"n": 1}
    assert relay.pump() == 0  # nothing left to deliver
