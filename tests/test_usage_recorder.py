"""The usage recorder: exactly once per event id, exact totals, malformed events rejected whole, and
the rule from template.yaml delivering what the publisher emits and nothing else."""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from local_stack.bus import BusRelay
from local_stack.lambdas import FunctionRunner
from local_stack.template import Stack
from parley.core.errors import MalformedUsageEvent
from parley.data import keys
from parley.usage.events import UsageEvent
from parley.usage.publisher import UsagePublisher

RECORDER = "UsageRecorderFunction"
UNITS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "characters", "audio_seconds",
         "web_searches", "estimated_cost_usd")
ATTRIBUTE = {"input_tokens": "inputTokens", "output_tokens": "outputTokens", "cache_read_tokens": "cacheReadTokens",
             "cache_write_tokens": "cacheWriteTokens", "characters": "characters", "audio_seconds": "audioSeconds",
             "web_searches": "webSearches", "estimated_cost_usd": "estimatedCostUsd"}


def usage(owner: str = "DEVICE#recorder-dev-01", **fields: Any) -> UsageEvent:
    base: dict[str, Any] = {"owner": owner, "product": "tutor", "engine": "bedrock", "model": "claude-3-haiku",
                            "operation": "chat", "input_tokens": 120, "output_tokens": 40,
                            "estimated_cost_usd": 0.00008, "occurred_at": "2026-11-22T10:00:00Z"}
    base.update(fields)
    return UsageEvent(**base)


def eventbridge(event: UsageEvent | dict[str, Any], **envelope: Any) -> dict[str, Any]:
    """The event as the rule delivers it to the function."""
    detail = event.model_dump(mode="json") if isinstance(event, UsageEvent) else event
    return {"version": "0", "id": f"eb-{random.random()}", "detail-type": "UsageRecorded", "source": "parley",
            "account": "123456789012", "time": "2026-11-22T10:00:01Z", "region": "us-east-1", "resources": [],
            "detail": detail, **envelope}


def items_of(table: str, owner: str) -> dict[str, dict[str, Any]]:
    result = boto3.resource("dynamodb").Table(table).query(
        KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": owner}, ConsistentRead=True)
    return {item["SK"]: item for item in result["Items"]}


def template_pattern(stack: Stack) -> dict[str, Any]:
    (rule,) = [props for _lid, props in stack.resources_of("AWS::Events::Rule")
               if any("usage-recorder" in str(t["Arn"]) for t in props["Targets"])]
    return dict(rule["EventPattern"])


# -- exactly once -----------------------------------------------------------------------------------
def test_the_same_event_delivered_five_times_is_counted_once(runner: FunctionRunner, aws: dict[str, str]) -> None:
    # Given one usage event
    event = usage(input_tokens=1000, output_tokens=250, estimated_cost_usd=0.0005625)
    # When EventBridge delivers it five times (at-least-once delivery, retries, a DLQ replay)
    results = [runner.invoke(RECORDER, eventbridge(event)) for _ in range(5)]
    # Then the first delivery counted it, the others changed nothing
    assert [r["counted"] for r in results] == [True, False, False, False, False]
    items = items_of(aws["Table"], event.owner)
    month = items[keys.usage_month_sk("2026-11")]
    day = items[keys.usage_day_sk("2026-11-22", "bedrock")]
    for total in (month, day):
        units = (total["inputTokens"], total["outputTokens"], total["totalTokens"], total["events"])
        assert units == (1000, 250, 1250, 1)
        assert total["estimatedCostUsd"] == Decimal("0.0005625")
    marker = items[keys.usage_event_marker_sk(event.event_id)]
    assert marker["expiresAt"] > 0 and marker["type"] == "USAGE_EVENT"
    assert len(items) == 3


def test_interleaved_events_for_several_owners_and_engines_add_up_exactly(runner: FunctionRunner,
                                                                         aws: dict[str, str]) -> None:
    # Given events from two owners on four engines over two days, each delivered once or twice, shuffled
    # (kept small: moto copies the whole table for every transaction)
    rng = random.Random(5)
    owners = [f"DEVICE#interleave-{n}" for n in range(2)]
    engines = {"anthropic": "claude-sonnet-4-5", "bedrock": "anthropic.claude-3-haiku-20240307-v1:0",
               "polly": "neural", "transcribe": "standard"}
    events = []
    for owner, (engine, model), day in itertools.product(owners, engines.items(), ("21", "22")):
        for _ in range(rng.randint(1, 2)):
            events.append(usage(
                owner=owner, engine=engine, model=model, occurred_at=f"2026-11-{day}T{rng.randint(0, 23):02d}:30:00Z",
                input_tokens=rng.randint(0, 5000), output_tokens=rng.randint(0, 900),
                cache_read_tokens=rng.randint(0, 2000), cache_write_tokens=rng.randint(0, 300),
                characters=rng.randint(0, 400), audio_seconds=round(rng.uniform(0, 90), 3),
                web_searches=rng.randint(0, 2), estimated_cost_usd=round(rng.uniform(0, 0.05), 9)))
    deliveries = [e for e in events for _ in range(rng.randint(1, 2))]
    rng.shuffle(deliveries)
    # When they are all delivered
    for event in deliveries:
        runner.invoke(RECORDER, eventbridge(event))
    # Then every monthly and daily total is the exact sum of its distinct events
    expected: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for event in events:
        day = event.occurred_at[:10]
        for sk in (keys.usage_month_sk("2026-11"), keys.usage_day_sk(day, event.engine)):
            sums = expected[(event.owner, sk)]
            for unit in UNITS:
                sums[ATTRIBUTE[unit]] += Decimal(str(getattr(event, unit)))
            sums["events"] += 1
    for owner in owners:
        items = items_of(aws["Table"], owner)
        totals = {sk: item for sk, item in items.items() if not sk.startswith("USAGE#EVENT#")}
        assert set(totals) == {sk for (o, sk) in expected if o == owner}
        for sk, item in totals.items():
            assert {k: item[k] for k in expected[(owner, sk)]} == dict(expected[(owner, sk)]), sk
        month = totals[keys.usage_month_sk("2026-11")]
        assert month["totalTokens"] == sum(e.total_tokens for e in events if e.owner == owner)


# -- malformed events -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("case", "raw"), [
    ("missing owner", eventbridge({k: v for k, v in usage().model_dump(mode="json").items() if k != "owner"})),
    ("negative tokens", eventbridge({**usage().model_dump(mode="json"), "input_tokens": -5})),
    ("unknown engine", eventbridge({**usage().model_dump(mode="json"), "engine": "gpt"})),
    ("unknown field", eventbridge({**usage().model_dump(mode="json"), "tokens": 5})),
    ("wrong detail-type", eventbridge(usage(), **{"detail-type": "UsageRecordedV2"})),
    ("wrong source", eventbridge(usage(), source="parley.test")),
    ("no detail", {"source": "parley", "detail-type": "UsageRecorded"}),
])
def test_a_malformed_event_is_rejected_and_nothing_is_written(case: str, raw: dict[str, Any], runner: FunctionRunner,
                                                              aws: dict[str, str],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # When the recorder gets a malformed event, it raises (so EventBridge/Lambda retry, then the DLQ)
    with pytest.raises(MalformedUsageEvent):
        runner.invoke(RECORDER, raw)
    # Then it logged why, and wrote nothing at all
    assert any(r.getMessage() == "Usage event rejected" and r.__dict__.get("reason") for r in caplog.records), case
    assert items_of(aws["Table"], "DEVICE#recorder-dev-01") == {}


def test_an_event_that_fails_midway_is_not_half_applied(runner: FunctionRunner, aws: dict[str, str]) -> None:
    # Given a daily total whose counter cannot be added to (corrupted by hand)
    table = boto3.resource("dynamodb").Table(aws["Table"])
    event = usage()
    table.put_item(Item={"PK": event.owner, "SK": keys.usage_day_sk("2026-11-22", "bedrock"), "inputTokens": "oops"})
    # When the event is delivered, the transaction fails ...
    with pytest.raises(ClientError, match=r"TransactionCanceled|ValidationException"):
        runner.invoke(RECORDER, eventbridge(event))
    # ... and neither the marker nor the monthly total changed: a retry after the repair counts it once
    items = items_of(aws["Table"], event.owner)
    assert set(items) == {keys.usage_day_sk("2026-11-22", "bedrock")}
    table.delete_item(Key={"PK": event.owner, "SK": keys.usage_day_sk("2026-11-22", "bedrock")})
    assert runner.invoke(RECORDER, eventbridge(event)) == {"counted": True}
    assert items_of(aws["Table"], event.owner)[keys.usage_month_sk("2026-11")]["inputTokens"] == 120


# -- the rule's pattern -------------------------------------------------------------------------------
def test_the_template_rule_matches_exactly_the_published_events(stack: Stack) -> None:
    pattern = EventPattern(None, template_pattern(stack))
    published = eventbridge(usage())
    assert pattern.matches_event(published)
    near_misses = [
        {**published, "detail-type": "UsageRecordedV2"},
        {**published, "detail-type": "usagerecorded"},
        {**published, "detail-type": "TranscriptReady"},
        {**published, "source": "parley.test"},
        {**published, "source": "aws.s3"},
        {k: v for k, v in published.items() if k != "source"},
    ]
    assert [pattern.matches_event(e) for e in near_misses] == [False] * len(near_misses)
    assert template_pattern(stack) == {"source": ["parley"], "detail-type": ["UsageRecorded"]}


def test_the_bus_delivers_published_events_to_the_recorder_and_nothing_else(bus: BusRelay,
                                                                           aws: dict[str, str]) -> None:
    # Given the template's rules on moto's buses
    events = boto3.client("events")
    publisher = UsagePublisher(events, aws["EventBus"])
    event = usage(owner="DEVICE#bus-relay-01")
    # When the publisher emits a usage event, and other events go by on the same and the default bus
    publisher.publish(event)
    detail = event.model_dump_json()
    events.put_events(Entries=[
        {"Source": "parley", "DetailType": "AnalysisCompleted", "Detail": detail, "EventBusName": aws["EventBus"]},
        {"Source": "parley.other", "DetailType": "UsageRecorded", "Detail": detail, "EventBusName": aws["EventBus"]},
        {"Source": "parley", "DetailType": "UsageRecorded", "Detail": detail},  # the default bus
    ])
    bus.pump()
    # Then the recorder received exactly the one published event, and counted it
    to_recorder = [d for d in bus.deliveries if d.target.endswith(":function:parley-test-usage-recorder")]
    assert [d.event["detail"]["event_id"] for d in to_recorder] == [event.event_id]
    assert to_recorder[0].error is None
    month = items_of(aws["Table"], event.owner)[keys.usage_month_sk("2026-11")]
    assert month["events"] == 1 and month["inputTokens"] == 120


def test_a_failing_event_is_retried_then_dead_lettered(bus: BusRelay, aws: dict[str, str]) -> None:
    # Given a malformed usage event put on the bus by a buggy producer
    bad = {**usage().model_dump(mode="json"), "owner": "nobody"}
    boto3.client("events").put_events(Entries=[{"Source": "parley", "DetailType": "UsageRecorded",
                                                "Detail": json.dumps(bad), "EventBusName": aws["EventBus"]}])
    # When the bus delivers it
    bus.pump()
    # Then the recorder failed it (1 try + 2 async retries), and the event waits in the usage DLQ
    assert [d.error is not None for d in bus.deliveries] == [True]
    sqs = boto3.client("sqs")
    dlq = sqs.get_queue_url(QueueName=aws["UsageDlq"])["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(message["Body"])["detail"]["owner"] == "nobody"


def test_parked_and_replayed_events_are_counted_once_from_the_parking_queue(bus: BusRelay,
                                                                            aws: dict[str, str]) -> None:
    # Given an event the publisher parked (the bus refused it), and the same event replayed from the DLQ
    event = usage(owner="DEVICE#parked-dev-01", output_tokens=77)
    sqs = boto3.client("sqs")
    parking = sqs.get_queue_url(QueueName=aws["UsageParkingQueue"])["QueueUrl"]
    body = json.dumps({**event.envelope(), "parked": {"reason": "InternalFailure", "at": "2026-11-22T10:00:00Z"}})
    sqs.send_message(QueueUrl=parking, MessageBody=body)
    sqs.send_message(QueueUrl=parking, MessageBody=json.dumps(event.envelope()))
    # When the recorder's SQS event source runs
    bus.pump()
    # Then the event is counted once, and both messages are gone from the queue
    month = items_of(aws["Table"], event.owner)[keys.usage_month_sk("2026-11")]
    assert (month["events"], month["outputTokens"]) == (1, 77)
    assert sqs.receive_message(QueueUrl=parking, MaxNumberOfMessages=10).get("Messages", []) == []


def test_a_bad_message_on_the_parking_queue_fails_alone(runner: FunctionRunner, aws: dict[str, str]) -> None:
    good = usage(owner="DEVICE#batch-dev-01")
    records = [{"messageId": "m-good", "receiptHandle": "r1", "body": json.dumps(good.envelope()),
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:parley-test-usage-parking",
                "awsRegion": "us-east-1"}]
    records.append({**records[0], "messageId": "m-bad", "body": "{not json"})
    records.append({**records[0], "messageId": "m-worse", "body": json.dumps({"source": "parley"})})
    result = runner.invoke(RECORDER, {"Records": records})
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-bad"}, {"itemIdentifier": "m-worse"}]}
    assert items_of(aws["Table"], good.owner)[keys.usage_month_sk("2026-11")]["events"] == 1
