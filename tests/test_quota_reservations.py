"""Quota reservations: held before a billable call, settled exactly once by the call's usage event
(or released), and the overshoot at the limit bounded by one reservation whatever the concurrency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from parley.ai.errors import ProviderError
from parley.ai.metering import MeteredProvider, prompt_bytes, request_bound
from parley.ai.offline import OfflineProvider
from parley.ai.types import AiAnswer, AiRequest, TokenUsage, Turn, UsageReport
from parley.core.errors import QuotaExceeded
from parley.core.ids import utcnow
from parley.data import keys
from parley.data.store import Store
from parley.usage.events import UsageEvent
from parley.usage.ledger import UsageLedger
from parley.usage.pricing import DEFAULT_PRICES
from parley.usage.quota import Bound, Limits, QuotaGuard, month_of, reservation_attribute
from tests.conftest import atomic_dynamodb

OWNER = "DEVICE#reserve-device-01"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def store_of(aws: dict[str, str]) -> Store:
    return Store(boto3.resource("dynamodb").Table(aws["Table"]))


def month_item(aws: dict[str, str], owner: str = OWNER) -> dict[str, Any]:
    return store_of(aws).get(owner, keys.usage_month_sk(month_of(utcnow()))) or {}


def open_reservations(item: dict[str, Any]) -> list[str]:
    return [name for name in item if name.startswith("reservation#")]


class Publisher:
    """Publishes straight into the ledger, as the bus and the recorder would."""

    prices = DEFAULT_PRICES

    def __init__(self, ledger: UsageLedger | None) -> None:
        self.ledger = ledger
        self.events: list[UsageEvent] = []

    def publish(self, event: UsageEvent) -> None:
        event = event.model_copy(update={"estimated_cost_usd": self.prices.cost(event)})
        self.events.append(event)
        if self.ledger is not None:
            self.ledger.record(event)


# -- reserve, settle, release -------------------------------------------------------------------
def test_a_reservation_is_held_then_replaced_by_the_recorded_usage(aws: dict[str, str]) -> None:
    # Given an owner with a token limit
    store = store_of(aws)
    guard = QuotaGuard(store, Limits(monthly_tokens=10_000, monthly_cost_usd=0))
    # When a call reserves its bound
    reservation = guard.reserve(OWNER, Bound(tokens=900, cost_usd=0.01), operation="chat")
    assert reservation is not None
    held = month_item(aws)
    # Then the month holds it: committed, and named by the reservation's attribute
    assert (held["committedTokens"], held["committedCostUnits"]) == (900, 100_000_000)  # $0.01 in 1e-10 units
    assert open_reservations(held) == [reservation_attribute(reservation.id)]
    assert guard.status(OWNER).reserved_tokens == 900
    # When the call's usage event (naming the reservation) is recorded — twice, as a redelivery would be
    event = UsageEvent(owner=OWNER, product="tutor", engine="bedrock", model=HAIKU, operation="chat",
                       input_tokens=120, output_tokens=30, estimated_cost_usd=0.0000675).settling(reservation)
    assert UsageLedger(store).record(event) is True
    assert UsageLedger(store).record(event) is False
    # Then the reservation is gone and the month counts the call once, at what it really used
    settled = month_item(aws)
    assert open_reservations(settled) == []
    assert (settled["committedTokens"], settled["totalTokens"]) == (150, 150)
    assert settled["estimatedCostUsd"] == Decimal("0.0000675") and settled["committedCostUnits"] == 675_000
    assert guard.status(OWNER).reserved_tokens == 0


def test_a_failed_call_releases_its_reservation_once(aws: dict[str, str]) -> None:
    guard = QuotaGuard(store_of(aws), Limits(monthly_tokens=1000, monthly_cost_usd=1))
    reservation = guard.reserve(OWNER, Bound(tokens=400, cost_usd=0.2), operation="chat")
    assert guard.release(reservation) is True
    assert guard.release(reservation) is False  # once
    item = month_item(aws)
    assert (item["committedTokens"], item["committedCostUnits"]) == (0, 0)
    assert open_reservations(item) == []


def test_an_event_for_a_reservation_already_released_is_counted_alone(aws: dict[str, str]) -> None:
    store = store_of(aws)
    guard = QuotaGuard(store, Limits(monthly_tokens=1000, monthly_cost_usd=0))
    reservation = guard.reserve(OWNER, Bound(tokens=400), operation="chat")
    guard.release(reservation)  # e.g. overdue and reconciled before its (parked) event arrived
    event = UsageEvent(owner=OWNER, product="tutor", engine="offline", model="parley-offline-1",
                       operation="chat", input_tokens=50, output_tokens=10).settling(reservation)
    assert UsageLedger(store).record(event) is True
    item = month_item(aws)
    assert (item["committedTokens"], item["totalTokens"]) == (60, 60)


def test_a_reservation_taken_last_month_is_settled_in_that_month(aws: dict[str, str]) -> None:
    store = store_of(aws)
    guard = QuotaGuard(store, Limits(monthly_tokens=1000, monthly_cost_usd=0))
    reserved_at = utcnow().replace(day=1, hour=0, minute=0) - timedelta(minutes=1)  # the last minute of last month
    reservation = guard.reserve(OWNER, Bound(tokens=400), operation="chat", now=reserved_at)
    assert reservation is not None and reservation.month == month_of(reserved_at)
    event = UsageEvent(owner=OWNER, product="tutor", engine="offline", model="parley-offline-1",
                       operation="chat", input_tokens=50, output_tokens=10).settling(reservation)
    UsageLedger(store).record(event)
    last = store.get(OWNER, keys.usage_month_sk(month_of(reserved_at))) or {}
    assert (last["committedTokens"], open_reservations(last)) == (0, [])
    assert (month_item(aws)["committedTokens"], month_item(aws)["totalTokens"]) == (60, 60)


def test_over_the_limit_a_reservation_is_refused_with_the_429_details(aws: dict[str, str]) -> None:
    guard = QuotaGuard(store_of(aws), Limits(monthly_tokens=1000, monthly_cost_usd=0))
    assert guard.reserve(OWNER, Bound(tokens=999), operation="chat") is not None  # 999 of 1000: still under
    assert guard.reserve(OWNER, Bound(tokens=5), operation="chat") is not None  # the one allowed over: 1004
    with pytest.raises(QuotaExceeded) as refused:
        guard.reserve(OWNER, Bound(tokens=1), operation="chat")
    (detail,) = refused.value.details
    assert (detail["limit"], detail["limitValue"], detail["used"]) == ("monthlyTokens", 1000, 1004)
    assert int(refused.value.headers["Retry-After"]) > 0


def test_a_reservation_nobody_settled_is_released_once_overdue(aws: dict[str, str]) -> None:
    # Given a reservation holding the whole month, taken by a call that then crashed
    guard = QuotaGuard(store_of(aws), Limits(monthly_tokens=1000, monthly_cost_usd=0))
    crashed_at = utcnow() - timedelta(minutes=20)
    guard.reserve(OWNER, Bound(tokens=5000), operation="chat", now=crashed_at)
    # When the next call reserves (its settleBy, 15 minutes, has passed)
    again = guard.reserve(OWNER, Bound(tokens=100), operation="chat")
    # Then the abandoned reservation was released and the new one admitted
    assert again is not None
    item = month_item(aws)
    assert item["committedTokens"] == 100 and open_reservations(item) == [reservation_attribute(again.id)]


def test_a_recent_reservation_is_not_released_by_the_reconciliation(aws: dict[str, str]) -> None:
    guard = QuotaGuard(store_of(aws), Limits(monthly_tokens=1000, monthly_cost_usd=0))
    guard.reserve(OWNER, Bound(tokens=5000), operation="chat")
    with pytest.raises(QuotaExceeded):
        guard.reserve(OWNER, Bound(tokens=100), operation="chat")
    assert month_item(aws)["committedTokens"] == 5000


def test_an_owner_without_limits_reserves_nothing_and_is_still_counted(aws: dict[str, str]) -> None:
    guard = QuotaGuard(store_of(aws), Limits(monthly_tokens=0, monthly_cost_usd=0))
    assert guard.reserve(OWNER, Bound(tokens=10**9), operation="chat") is None
    assert month_item(aws) == {}


def test_months_recorded_before_reservations_still_stop_a_call(aws: dict[str, str]) -> None:
    table = boto3.resource("dynamodb").Table(aws["Table"])
    table.put_item(Item={"PK": OWNER, "SK": keys.usage_month_sk(month_of(utcnow())), "totalTokens": 1000,
                         "estimatedCostUsd": Decimal("0.1")})
    with pytest.raises(QuotaExceeded):
        QuotaGuard(store_of(aws), Limits(monthly_tokens=1000, monthly_cost_usd=0)).reserve(
            OWNER, Bound(tokens=1), operation="chat")


# -- the bound of a model call --------------------------------------------------------------------
def test_the_bound_covers_every_byte_of_the_prompt_and_the_whole_answer() -> None:
    request = AiRequest(system=("Tu es un tuteur.",), messages=(Turn("user", "안녕하세요, 반갑습니다"),),
                        max_tokens=300)
    bound = request_bound(request, [("bedrock", HAIKU)], DEFAULT_PRICES)
    # Korean is three bytes a character: the bound counts bytes, never fewer than the tokens
    assert prompt_bytes(request) >= len("Tu es un tuteur.") + 3 * len("안녕하세요, 반갑습니다")
    assert bound.tokens == prompt_bytes(request) + 300
    real = OfflineProvider().complete(request).usage
    assert real.input_tokens + real.output_tokens < bound.tokens
    # priced at the dearest model that may answer, input at the cache-write price
    dear = request_bound(request, [("bedrock", HAIKU), ("anthropic", "claude-opus-4-1")], DEFAULT_PRICES)
    assert dear.cost_usd > bound.cost_usd > 0
    assert request_bound(request, [("offline", "parley-offline-1")], DEFAULT_PRICES).cost_usd == 0


# -- streams: metered on every path -------------------------------------------------------------
class Streaming:
    """An engine that streams ``deltas`` then its answer; reports its input first when ``report``."""

    engine = "anthropic"
    model = "claude-haiku-4-5"

    def __init__(self, deltas: list[str], *, report: bool = True, fail_after: int | None = None) -> None:
        self.deltas = deltas
        self.report = report
        self.fail_after = fail_after
        self.closed = False
        self.calls = 0

    def complete(self, request: AiRequest) -> AiAnswer:
        raise AssertionError("not used")

    def stream(self, request: AiRequest) -> Iterator[Any]:
        self.calls += 1
        try:
            if self.report:
                yield UsageReport(engine="anthropic", model=self.model, usage=TokenUsage(input_tokens=77))
            for index, delta in enumerate(self.deltas):
                if self.fail_after is not None and index >= self.fail_after:
                    raise ProviderError("The engine dropped the stream.", engine="anthropic")
                yield delta
            yield AiAnswer(text="".join(self.deltas), engine="anthropic", model=self.model,
                           usage=TokenUsage(input_tokens=77, output_tokens=40))
        finally:
            self.closed = True


def metered(aws: dict[str, str], engine: Any, *, limits: Limits | None = None) -> tuple[MeteredProvider, Publisher]:
    store = store_of(aws)
    publisher = Publisher(UsageLedger(store))
    quota = QuotaGuard(store, limits or Limits(monthly_tokens=100_000, monthly_cost_usd=0))
    return MeteredProvider(engine, owner=OWNER, product="proofreading", operation="chat",
                           publisher=publisher, quota=quota), publisher  # type: ignore[arg-type]


REQUEST = AiRequest(system=("Answer briefly.",), messages=(Turn("user", "Tell me a story."),), max_tokens=500)


def test_a_stream_closed_mid_answer_meters_the_input_and_the_output_so_far(aws: dict[str, str]) -> None:
    # Given a stream the consumer leaves after two deltas (a WebSocket client gone)
    engine = Streaming(["Once upon ", "a time ", "there was ", "a dragon."])
    provider, publisher = metered(aws, engine)
    stream = provider.stream(REQUEST)
    assert next(stream) == "Once upon " and next(stream) == "a time "
    stream.close()
    # Then the engine's stream was released, and one event carries the reported input and the output so far
    assert engine.closed
    (event,) = publisher.events
    assert (event.input_tokens, event.output_tokens) == (77, 5)  # "Once upon a time " ≈ 5 tokens
    assert event.reservation_id is not None
    item = month_item(aws)
    assert open_reservations(item) == [] and item["committedTokens"] == item["totalTokens"] == 82


def test_a_stream_that_fails_after_text_meters_what_it_produced(aws: dict[str, str]) -> None:
    engine = Streaming(["Half ", "an answer"], report=False, fail_after=1)
    provider, publisher = metered(aws, engine)
    got: list[Any] = []

    def drain() -> None:
        for item in provider.stream(REQUEST):
            got.append(item)

    with pytest.raises(ProviderError):
        drain()
    assert got == ["Half "]
    (event,) = publisher.events
    assert event.input_tokens > 0 and event.output_tokens == 2  # no report: the prompt is estimated
    assert open_reservations(month_item(aws)) == []


def test_a_stream_that_fails_before_anything_releases_its_reservation(aws: dict[str, str]) -> None:
    engine = Streaming(["never"], report=False, fail_after=0)
    provider, publisher = metered(aws, engine)
    with pytest.raises(ProviderError):
        list(provider.stream(REQUEST))
    assert publisher.events == []
    item = month_item(aws)
    assert item["committedTokens"] == 0 and open_reservations(item) == []


def test_a_stream_closed_before_it_started_uses_nothing(aws: dict[str, str]) -> None:
    engine = Streaming(["never"])
    provider, publisher = metered(aws, engine)
    provider.stream(REQUEST).close()
    assert engine.calls == 0 and publisher.events == []
    assert month_item(aws)["committedTokens"] == 0


def test_a_complete_stream_is_metered_once_with_the_final_usage(aws: dict[str, str]) -> None:
    engine = Streaming(["All ", "done."])
    provider, publisher = metered(aws, engine)
    items = list(provider.stream(REQUEST))
    assert items[:2] == ["All ", "done."] and isinstance(items[-1], AiAnswer)  # reports never reach the caller
    (event,) = publisher.events
    assert (event.input_tokens, event.output_tokens) == (77, 40)
    assert month_item(aws)["committedTokens"] == 117


# -- the burst: one token left, many calls at once ------------------------------------------------
def test_a_burst_of_threads_at_the_limit_overshoots_by_at_most_one_reservation(aws: dict[str, str]) -> None:
    # Given an owner one token under the limit
    limit = 1000
    table = boto3.resource("dynamodb").Table(aws["Table"])
    table.put_item(Item={"PK": OWNER, "SK": keys.usage_month_sk(month_of(utcnow())), "totalTokens": limit - 1,
                         "committedTokens": limit - 1, "estimatedCostUsd": 0, "committedCostUnits": 0})
    answered: list[AiAnswer] = []
    refused: list[QuotaExceeded] = []
    start = threading.Barrier(20)

    def call() -> None:
        provider, _ = metered(aws, OfflineProvider(), limits=Limits(monthly_tokens=limit, monthly_cost_usd=0))
        start.wait()
        try:
            answered.append(provider.complete(REQUEST))
        except QuotaExceeded as exc:
            refused.append(exc)

    # When 20 calls race for it (DynamoDB applies conditional writes to one item one at a time)
    with atomic_dynamodb():
        threads = [threading.Thread(target=call) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Then exactly one was answered, and the month ends within one reservation of the limit
    assert (len(answered), len(refused)) == (1, 19)
    item = month_item(aws)
    bound = request_bound(REQUEST, [("offline", "parley-offline-1")], DEFAULT_PRICES).tokens
    assert limit <= item["totalTokens"] <= limit - 1 + bound
    assert item["committedTokens"] == item["totalTokens"] and open_reservations(item) == []
