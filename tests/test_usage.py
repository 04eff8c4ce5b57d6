"""The usage event contract, the price table and the publisher's reliability (issue 5).

The publisher is the ONE helper every billable call goes through: it prices the event, puts it on
the bus, retries briefly, parks what the bus refused on the parking queue, and never raises.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from local_stack.template import Stack
from parley.core.config import MeteringEnv
from parley.usage.events import UsageEvent
from parley.usage.ledger import parse_usage_event
from parley.usage.pricing import DEFAULT_PRICES, PriceTable
from parley.usage.publisher import PublishOutcome, UsagePublisher, publisher_from

OWNER = "DEVICE#pricing-device-01"


def event(**units: Any) -> UsageEvent:
    fields: dict[str, Any] = {"owner": OWNER, "product": "tutor", "engine": "bedrock",
                              "model": "anthropic.claude-3-haiku-20240307-v1:0", "operation": "chat"}
    fields.update(units)
    return UsageEvent(**fields)


# -- the contract ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    {"owner": "someone"},  # not an owner partition
    {"input_tokens": -1},
    {"engine": "openai"},
    {"product": "games"},
    {"occurred_at": "2026-11-22T10:00:00"},  # no time zone
    {"occurred_at": "yesterday"},
    {"surprise": 1},  # unknown fields are refused
])
def test_the_contract_refuses_malformed_events(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        event(**bad)


def test_the_entry_is_what_the_rule_matches_and_round_trips_through_the_envelope() -> None:
    # Given an event
    original = event(input_tokens=10, output_tokens=5, occurred_at="2026-11-22T10:00:00+09:00")
    # When it becomes a PutEvents entry and an EventBridge envelope
    entry = original.entry("parley-test")
    envelope = original.envelope()
    # Then source and detail-type are the contract's, and the detail parses back to the same event
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == ("parley", "UsageRecorded", "parley-test")
    assert UsageEvent.model_validate_json(entry["Detail"]) == original
    assert parse_usage_event(envelope) == original
    assert original.occurred_at == "2026-11-22T01:00:00.000000Z"  # normalised to UTC


# -- the price table ----------------------------------------------------------------------------------
def test_the_seed_prices_are_the_defaults() -> None:
    million = 1_000_000
    assert DEFAULT_PRICES.cost(event(input_tokens=million)) == 0.25
    assert DEFAULT_PRICES.cost(event(output_tokens=million)) == 1.25
    assert DEFAULT_PRICES.cost(event(engine="polly", model="neural", characters=million)) == 16.0
    assert DEFAULT_PRICES.cost(event(engine="polly", model="standard", characters=million)) == 4.0
    assert DEFAULT_PRICES.cost(event(engine="transcribe", model="standard", audio_seconds=60)) == 0.024


def test_other_models_cache_tokens_and_minimums_are_priced() -> None:
    million = 1_000_000
    sonnet = event(engine="anthropic", model="claude-sonnet-4-5-20250929", input_tokens=million)
    assert DEFAULT_PRICES.cost(sonnet) == 3.0
    # the longest matching key wins: Opus 4.5 is not priced as Opus 4
    assert DEFAULT_PRICES.cost(event(engine="anthropic", model="claude-opus-4-5", output_tokens=million)) == 25.0
    assert DEFAULT_PRICES.cost(event(engine="bedrock", model="global.anthropic.claude-opus-4-6-v1",
                                     output_tokens=million)) == 25.0
    assert DEFAULT_PRICES.cost(event(engine="anthropic", model="claude-opus-4-1", output_tokens=million)) == 75.0
    assert DEFAULT_PRICES.cost(event(model="us.anthropic.claude-3-5-haiku-20241022-v1:0",
                                     input_tokens=million)) == 0.8
    # cache reads at 0.1x and writes at 1.25x the input price
    assert DEFAULT_PRICES.cost(event(cache_read_tokens=million)) == 0.025
    assert DEFAULT_PRICES.cost(event(cache_write_tokens=million)) == 0.3125
    assert DEFAULT_PRICES.cost(event(engine="anthropic", model="claude-3-haiku", web_searches=3)) == 0.03
    # Transcribe bills at least 15 seconds a request
    assert DEFAULT_PRICES.cost(event(engine="transcribe", model="standard", audio_seconds=5)) == 0.006
    # the offline engine is free; an unknown model is priced like a Sonnet, never as free
    assert DEFAULT_PRICES.cost(event(engine="offline", model="parley-offline-1", input_tokens=million)) == 0
    assert DEFAULT_PRICES.cost(event(engine="offline", model="claude-sonnet-4", output_tokens=million)) == 0
    assert DEFAULT_PRICES.cost(event(model="mystery-model", input_tokens=million)) == 3.0


def test_overrides_merge_over_the_defaults() -> None:
    prices = PriceTable.with_overrides(json.dumps({
        "modelTokensPerMillion": {"claude-3-haiku": {"input": 0.5, "output": 2.5}},
        "pollyCharactersPerMillion": {"neural": 19.2},
        "cacheReadMultiplier": 0.2,
    }))
    assert prices.cost(event(input_tokens=1_000_000)) == 0.5
    assert prices.cost(event(engine="polly", model="neural", characters=1_000_000)) == 19.2
    assert prices.cost(event(cache_read_tokens=1_000_000)) == 0.1
    # untouched entries keep their defaults
    assert prices.cost(event(engine="polly", model="standard", characters=1_000_000)) == 4.0
    assert prices.cost(event(engine="anthropic", model="claude-sonnet-4", input_tokens=1_000_000)) == 3.0


@pytest.mark.parametrize("bad", ['[1, 2]', '{"cacheReadMultiplier": -1}', '{"nonsense": 1}', "not json"])
def test_a_bad_override_fails_the_cold_start(bad: str) -> None:
    with pytest.raises((ValueError, ValidationError)):
        MeteringEnv.load({"EVENT_BUS_NAME": "parley-test", "PRICE_TABLE_OVERRIDES": bad})


def test_the_template_parameter_reaches_every_function_that_meters() -> None:
    # Given the stack deployed with an override of the Polly neural price
    overrides = '{"pollyCharactersPerMillion": {"neural": 20}}'
    stack = Stack(parameters={"Stage": "test", "AuthMode": "device", "PriceTableOverrides": overrides,
                              "QuotaMonthlyTokens": "1000", "QuotaMonthlyCostUsd": "2.5"})
    functions = stack.functions()
    # (each function gets only what its environment model reads: the metering ones read the prices)
    metering = {k: spec for k, spec in functions.items() if "PRICE_TABLE_OVERRIDES" in spec.environment}
    publishing = {k for k, r in stack.resources.items() if r["Type"] == "AWS::Serverless::Function"
                  and {"Ref": "UsagePublishingPolicy"} in r["Properties"].get("Policies", [])}
    assert "SpeechFunction" in metering and publishing <= set(metering)
    for logical_id, spec in metering.items():
        # When a function builds its publisher from its environment
        env = MeteringEnv.load(spec.environment)
        publisher = publisher_from(env, events_client=object())
        # Then the override prices its events, and the default quota limits are the parameters'
        assert publisher.priced(event(engine="polly", model="neural", characters=1_000_000)).estimated_cost_usd == 20.0
        assert (env.quota_monthly_tokens, env.quota_monthly_cost_usd) == (1000, 2.5), logical_id
        assert "USAGE_PARKING_QUEUE_URL" in spec.environment, logical_id


def test_costs_add_up_exactly() -> None:
    # Thousands of small events: Decimal sums of the published costs equal the cost of the sum
    costs = [Decimal(str(DEFAULT_PRICES.cost(event(input_tokens=7, output_tokens=3)))) for _ in range(1000)]
    assert sum(costs) == Decimal(str(DEFAULT_PRICES.cost(event(input_tokens=7000, output_tokens=3000))))


# -- the publisher ----------------------------------------------------------------------------------
class FlakyEvents:
    """An EventBridge client that fails the way it is told to, then succeeds."""

    def __init__(self, *failures: str) -> None:
        self.failures = list(failures)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        failure = self.failures.pop(0) if self.failures else "ok"
        if failure == "error":
            raise ClientError({"Error": {"Code": "InternalException", "Message": "bus down"}}, "PutEvents")
        if failure == "failed-entry":
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}


def _parked(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def _queue_url(name: str) -> str:
    return str(boto3.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def test_publish_prices_the_event_on_the_real_bus(aws: dict[str, str]) -> None:
    events = FlakyEvents()
    outcome = UsagePublisher(events, aws["EventBus"]).publish(event(input_tokens=1_000_000, estimated_cost_usd=99))
    assert outcome is PublishOutcome.PUBLISHED
    detail = json.loads(events.calls[0][0]["Detail"])
    assert detail["estimated_cost_usd"] == 0.25  # the price table's, not the caller's
    # and moto's real PutEvents accepts the entry as built
    real = UsagePublisher(boto3.client("events"), aws["EventBus"])
    assert real.publish(event(input_tokens=1)) is PublishOutcome.PUBLISHED


@pytest.mark.parametrize("failure", ["error", "failed-entry"])
def test_a_transient_failure_is_retried_briefly(failure: str, aws: dict[str, str]) -> None:
    sleeps: list[float] = []
    events = FlakyEvents(failure, failure)
    publisher = UsagePublisher(events, aws["EventBus"], parking_queue_url=_queue_url(aws["UsageParkingQueue"]),
                               sleep=sleeps.append)
    assert publisher.publish(event(input_tokens=5)) is PublishOutcome.PUBLISHED
    assert len(events.calls) == 3
    assert sleeps == [0.05, 0.1]
    assert _parked(_queue_url(aws["UsageParkingQueue"])) == []


@pytest.mark.parametrize("failure", ["error", "failed-entry"])
def test_a_persistent_failure_parks_the_event_and_never_raises(failure: str, aws: dict[str, str]) -> None:
    # Given a bus that keeps failing
    events = FlakyEvents(*[failure] * 10)
    parking = _queue_url(aws["UsageParkingQueue"])
    publisher = UsagePublisher(events, aws["EventBus"], parking_queue_url=parking, sleep=lambda _s: None)
    original = event(input_tokens=1_000_000)
    # When an event is published
    outcome = publisher.publish(original)
    # Then it was tried 3 times, then parked whole (priced), with the reason
    assert outcome is PublishOutcome.PARKED
    assert len(events.calls) == 3
    (body,) = _parked(parking)
    assert parse_usage_event(body) == original.model_copy(update={"estimated_cost_usd": 0.25})
    assert ("InternalException" if failure == "error" else "InternalFailure") in body["parked"]["reason"]


def test_without_a_parking_queue_the_whole_event_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def put_events(self, **_kw: Any) -> Any:
            raise RuntimeError("no network")

    original = event(output_tokens=42)
    outcome = UsagePublisher(Broken(), "parley-test", sleep=lambda _s: None).publish(original)
    assert outcome is PublishOutcome.LOGGED
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    logged: Any = record.__dict__
    assert logged["usage_event"]["detail"]["event_id"] == original.event_id
    assert logged["usage_event"]["detail"]["output_tokens"] == 42
    assert "no network" in logged["reason"]


def test_when_parking_fails_too_the_event_is_logged_not_raised(aws: dict[str, str],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    publisher = UsagePublisher(FlakyEvents(*["error"] * 3), aws["EventBus"], sleep=lambda _s: None,
                               parking_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    assert publisher.publish(event(input_tokens=1)) is PublishOutcome.LOGGED
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "parking_error" in record.__dict__ and "usage_event" in record.__dict__
