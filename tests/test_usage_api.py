"""GET /usage and the quotas: the owner's totals, cost, per-day per-engine breakdown and allowance,
and a 429 — with no provider call — once a monthly limit is reached."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest

import parley.tutor.chat as chat_module
from local_stack.bus import BusRelay
from local_stack.lambdas import FunctionRunner
from parley.ai.metering import MeteredProvider
from parley.ai.offline import OfflineProvider
from parley.ai.types import AiAnswer, AiRequest, Turn
from parley.core.api import make_resolver
from parley.core.errors import QuotaExceeded
from parley.core.ids import utcnow
from parley.data import keys
from parley.data.store import Store
from parley.usage.events import UsageEvent
from parley.usage.publisher import UsagePublisher
from parley.usage.quota import Limits, QuotaGuard, month_of
from tests.conftest import ApiClient, assert_error


def owner_of(api: ApiClient) -> str:
    return f"DEVICE#{api.device_id}"


def publish(aws: dict[str, str], **fields: Any) -> UsageEvent:
    event = UsageEvent(**{"product": "tutor", "operation": "chat", **fields})
    UsagePublisher(boto3.client("events"), aws["EventBus"]).publish(event)
    return event


def table(aws: dict[str, str]) -> Any:
    return boto3.resource("dynamodb").Table(aws["Table"])


def seed_month(aws: dict[str, str], owner: str, *, tokens: int = 0, cost: str = "0") -> None:
    table(aws).put_item(Item={"PK": owner, "SK": keys.usage_month_sk(month_of(utcnow())), "type": "USAGE_MONTH",
                              "totalTokens": tokens, "inputTokens": tokens, "estimatedCostUsd": Decimal(cost)})


# -- GET /usage -------------------------------------------------------------------------------------
def test_usage_shows_totals_cost_days_and_allowance(api: ApiClient, bus: BusRelay, aws: dict[str, str]) -> None:
    # Given chat, speech and transcription usage this month, recorded through the bus
    owner = owner_of(api)
    now = utcnow()
    today, month = now.strftime("%Y-%m-%d"), month_of(now)
    publish(aws, owner=owner, engine="bedrock", model="anthropic.claude-3-haiku-20240307-v1:0",
            input_tokens=1_000_000, output_tokens=200_000)
    publish(aws, owner=owner, engine="polly", model="neural", characters=5000, operation="tts")
    publish(aws, owner=owner, engine="transcribe", model="standard", audio_seconds=90, operation="stt")
    bus.pump()
    # When the owner asks for this month's usage (no ?month)
    response = api.get("/usage")
    # Then the totals, the cost from the price table, the per-day per-engine rows and the quota
    assert response.status == 200, response.body
    body = response.json()
    assert body["month"] == month
    assert body["totals"] == {
        "inputTokens": 1_000_000, "outputTokens": 200_000, "cacheReadTokens": 0, "cacheWriteTokens": 0,
        "totalTokens": 1_200_000, "characters": 5000, "audioSeconds": 90.0, "webSearches": 0, "events": 3,
        "estimatedCostUsd": 0.25 + 0.25 + 0.08 + 0.036}
    assert [(d["date"], d["engine"], d["events"]) for d in body["days"]] == [
        (today, "bedrock", 1), (today, "polly", 1), (today, "transcribe", 1)]
    assert [e["engine"] for e in body["byEngine"]] == ["bedrock", "polly", "transcribe"]
    assert body["byEngine"][1]["estimatedCostUsd"] == 0.08
    quota = body["quota"]
    assert quota["monthlyTokens"] is None and quota["tokensRemaining"] is None  # QuotaMonthlyTokens=0: unlimited
    assert quota["monthlyCostUsd"] == 5.0
    assert quota["costRemainingUsd"] == pytest.approx(5 - 0.616)
    assert quota["exceeded"] is False
    assert quota["resetsAt"].endswith("-01T00:00:00Z") and quota["resetsAt"] > now.isoformat()


def test_usage_of_another_month_and_of_another_owner_is_separate(api: ApiClient, bus: BusRelay,
                                                                  aws: dict[str, str]) -> None:
    publish(aws, owner=owner_of(api), engine="anthropic", model="claude-haiku-4-5", input_tokens=10,
            occurred_at="2026-03-31T23:59:59Z")
    bus.pump()
    march = api.get("/usage", query="month=2026-03").json()
    assert (march["month"], march["totals"]["inputTokens"], march["days"][0]["date"]) == ("2026-03", 10, "2026-03-31")
    assert march["quota"]["resetsAt"] == "2026-04-01T00:00:00Z"
    assert api.get("/usage", query="month=2026-04").json()["totals"]["events"] == 0
    stranger = api.as_device("stranger-device-01").get("/usage", query="month=2026-03").json()
    assert stranger["totals"]["events"] == 0 and stranger["days"] == []


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-01", "2026-00", "abcd-ef", "2026-01-01",
                                   "0000-01", "9999-12"])
def test_a_malformed_month_is_422(api: ApiClient, month: str) -> None:
    error = assert_error(api.get("/usage", query=f"month={month}"), 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "query.month"


def test_usage_needs_an_owner(api: ApiClient) -> None:
    assert_error(api.as_device(None).get("/usage"), 401, "UNAUTHORIZED")


def test_usage_shows_a_per_owner_override_and_when_it_is_used_up(api: ApiClient, aws: dict[str, str]) -> None:
    owner = owner_of(api)
    table(aws).put_item(Item={"PK": owner, "SK": keys.QUOTA_SK, "monthlyTokens": 1000, "monthlyCostUsd": 0})
    seed_month(aws, owner, tokens=1000, cost="7.5")
    quota = api.get("/usage").json()["quota"]
    assert quota["monthlyTokens"] == 1000 and quota["tokensRemaining"] == 0
    assert quota["monthlyCostUsd"] is None  # the override's 0 lifts the default cost limit
    assert quota["exceeded"] is True


# -- quotas ---------------------------------------------------------------------------------------
class StubProvider:
    """An engine that counts its calls."""

    engine = "bedrock"
    model = "anthropic.claude-3-haiku-20240307-v1:0"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, request: AiRequest) -> AiAnswer:
        self.calls += 1
        return OfflineProvider(self.model).complete(request)

    def stream(self, request: AiRequest) -> Iterator[Any]:
        self.calls += 1
        yield from OfflineProvider(self.model).stream(request)


REQUEST = AiRequest(system=("You are a tutor.",), messages=(Turn("user", "Hello there"),))


def metered(aws: dict[str, str], owner: str, limits: Limits, stub: StubProvider) -> MeteredProvider:
    store = Store(boto3.resource("dynamodb").Table(aws["Table"]))
    return MeteredProvider(stub, owner=owner, product="tutor", operation="chat",
                           publisher=UsagePublisher(boto3.client("events"), aws["EventBus"]),
                           quota=QuotaGuard(store, limits))


def test_under_the_limit_the_call_is_made_and_metered(aws: dict[str, str]) -> None:
    stub = StubProvider()
    provider = metered(aws, "DEVICE#quota-ok-01", Limits(monthly_tokens=1000, monthly_cost_usd=1), stub)
    provider.complete(REQUEST)
    assert stub.calls == 1 and len(provider.published) == 1


@pytest.mark.parametrize(("limits", "seed", "limit_name"), [
    (Limits(monthly_tokens=1000, monthly_cost_usd=0), {"tokens": 1000}, "monthlyTokens"),
    (Limits(monthly_tokens=0, monthly_cost_usd=2.5), {"cost": "2.5000001"}, "monthlyCostUsd"),
])
def test_over_the_limit_there_is_no_provider_call(aws: dict[str, str], limits: Limits, seed: dict[str, Any],
                                                  limit_name: str) -> None:
    # Given an owner who has used up a monthly limit
    owner = "DEVICE#quota-over-01"
    seed_month(aws, owner, **seed)
    stub = StubProvider()
    provider = metered(aws, owner, limits, stub)
    # When a billable call is attempted (complete, or a stream)
    with pytest.raises(QuotaExceeded) as complete:
        provider.complete(REQUEST)
    with pytest.raises(QuotaExceeded):
        provider.stream(REQUEST)
    # Then the engine was never called, nothing was published, and the error names the limit
    assert stub.calls == 0 and provider.published == []
    (detail,) = complete.value.details
    assert detail["limit"] == limit_name
    assert detail["resetsAt"].endswith("-01T00:00:00Z")


def test_the_429_body_says_which_limit_the_usage_and_the_reset(aws: dict[str, str]) -> None:
    # Given an owner at the token limit, and an endpoint that makes a metered call
    owner = "DEVICE#quota-http-01"
    seed_month(aws, owner, tokens=5000)
    stub = StubProvider()
    app = make_resolver(cors_allow_origin="https://app.example.com", max_body_bytes=4096)

    @app.get("/billable")
    def billable() -> dict[str, str]:
        return {"text": metered(aws, owner, Limits(monthly_tokens=5000, monthly_cost_usd=0), stub)
                .complete(REQUEST).text}

    # When it is called
    result = app.resolve({"httpMethod": "GET", "path": "/billable", "resource": "/billable", "headers": {},
                          "requestContext": {}}, None)
    # Then 429 with the stable error body, the limit, the usage, the reset time and Retry-After
    assert result["statusCode"] == 429
    body = json.loads(result["body"])["error"]
    assert body["code"] == "QUOTA_EXCEEDED" and "monthlyTokens" in body["message"]
    (detail,) = body["details"]
    assert (detail["limit"], detail["limitValue"], detail["used"]) == ("monthlyTokens", 5000, 5000)
    moment = datetime.now(tz=UTC)
    next_month = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    assert detail["resetsAt"] == next_month.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = result.get("multiValueHeaders") or {}
    assert int((headers.get("Retry-After") or [result.get("headers", {}).get("Retry-After")])[0]) > 0
    assert stub.calls == 0


def test_an_override_item_replaces_the_defaults_per_owner(aws: dict[str, str]) -> None:
    store = Store(table(aws))
    guard = QuotaGuard(store, Limits(monthly_tokens=100, monthly_cost_usd=1))
    table(aws).put_item(Item={"PK": "DEVICE#vip-device-01", "SK": keys.QUOTA_SK, "monthlyTokens": 0})
    assert guard.limits_for("DEVICE#vip-device-01") == Limits(monthly_tokens=0, monthly_cost_usd=1)
    assert guard.limits_for("DEVICE#other-device-01") == Limits(monthly_tokens=100, monthly_cost_usd=1)
    seed_month(aws, "DEVICE#vip-device-01", tokens=10_000, cost="0.5")
    assert guard.check("DEVICE#vip-device-01").tokens == 10_000  # unlimited tokens for this owner


def test_a_chat_turn_over_quota_is_429_and_reaches_no_engine(api: ApiClient, runner: FunctionRunner,
                                                            aws: dict[str, str], bus: BusRelay,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through POST /chat."""
    stub = StubProvider()
    monkeypatch.setattr(chat_module, "build_provider", lambda _env: stub)
    owner = owner_of(api)
    # Under quota: the turn is answered and shows up in GET /usage once the bus has delivered it
    assert api.post("/chat", {"message": "I went to the market yesterday."}).status == 200
    bus.pump()
    before = api.get("/usage").json()
    assert before["totals"]["events"] == 1 and stub.calls == 1
    # Over quota: 429, no engine call, nothing more counted
    table(aws).put_item(Item={"PK": owner, "SK": keys.QUOTA_SK, "monthlyTokens": 1})
    error = assert_error(api.post("/chat", {"message": "And today?"}), 429, "QUOTA_EXCEEDED")
    assert error["details"][0]["limit"] == "monthlyTokens"
    bus.pump()
    assert stub.calls == 1
    assert api.get("/usage").json()["totals"] == before["totals"]
