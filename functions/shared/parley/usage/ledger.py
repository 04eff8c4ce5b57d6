"""Usage totals: the recorder's exactly-once aggregation, and the owner's monthly report.

Items (seed 003's ``usage`` and ``usage-tracking`` tables, in the one table):

    monthly total   PK=<owner>  SK=USAGE#MONTH#2026-11                 type=USAGE_MONTH
    daily total     PK=<owner>  SK=USAGE#DAY#2026-11-22#<engine>       type=USAGE_DAY
    event marker    PK=<owner>  SK=USAGE#EVENT#<eventId>  expiresAt    type=USAGE_EVENT

Recording an event is ONE TransactWriteItems: a conditional Put of the event's marker (fails if
the event id was already counted) and an ADD of every unit to the monthly and the daily total.
Either all three happen or none, so a redelivered event changes nothing and a failed one leaves
nothing half-applied. The marker expires after ``marker_days`` (longer than the DLQ keeps a
message, so a replay from the DLQ is still recognised).

The same transaction keeps the quota's ``committedTokens`` / ``committedCostUnits`` (``parley.usage.quota``):
it adds the event's tokens and cost and, when the event names the reservation its call held,
removes that reservation from the monthly item and takes its amounts back out — conditional on the
reservation still being there. If it was released meanwhile (it was overdue), the event is counted
alone. Either way each call is in ``committed*`` exactly once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley.core.errors import MalformedUsageEvent, ServiceUnavailable
from parley.core.ids import iso_micros, utcnow
from parley.core.models import ApiModel
from parley.core.observability import logger
from parley.data import keys
from parley.data.store import Store
from parley.data.usage import EventOutcome, Settlement, UsageRecords
from parley.usage.events import DETAIL_TYPE, SOURCE, UsageEvent
from parley.usage.quota import QuotaGuard, QuotaStatus, cost_units, month_of, number, reservation_attribute

# (item attribute, value of one event) for every unit a total adds up.
_UNITS: tuple[tuple[str, Callable[[UsageEvent], Decimal]], ...] = (
    ("inputTokens", lambda e: Decimal(e.input_tokens)),
    ("outputTokens", lambda e: Decimal(e.output_tokens)),
    ("cacheReadTokens", lambda e: Decimal(e.cache_read_tokens)),
    ("cacheWriteTokens", lambda e: Decimal(e.cache_write_tokens)),
    ("totalTokens", lambda e: Decimal(e.total_tokens)),
    ("characters", lambda e: Decimal(e.characters)),
    ("audioSeconds", lambda e: number(Decimal(str(e.audio_seconds)))),
    ("webSearches", lambda e: Decimal(e.web_searches)),
    ("estimatedCostUsd", lambda e: number(Decimal(str(e.estimated_cost_usd)))),
    ("events", lambda e: Decimal(1)),
)


class _Envelope(BaseModel):
    """What the recorder requires of an EventBridge event (extra envelope fields are ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: Literal["parley"]
    detail_type: Literal["UsageRecorded"] = Field(alias="detail-type")
    detail: dict[str, Any]


def parse_usage_event(raw: Any) -> UsageEvent:
    """The usage event inside an EventBridge event, or ``MalformedUsageEvent`` saying why not."""
    try:
        envelope = _Envelope.model_validate(raw)
        return UsageEvent.model_validate(envelope.detail)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors())
        raise MalformedUsageEvent(f"Not a valid {SOURCE}/{DETAIL_TYPE} event: {reasons}",
                                  details=[{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                                           for e in exc.errors()]) from exc


class UsageLedger:
    def __init__(self, store: Store, *, marker_days: int = 15, attempts: int = 4,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.records = UsageRecords(store)
        self.marker_ttl = timedelta(days=marker_days)
        self.attempts = attempts
        self._sleep = sleep

    # -- recording ----------------------------------------------------------------------------
    def record(self, event: UsageEvent) -> bool:
        """Add the event to its owner's totals, and settle the reservation it names; False if this
        event id was already counted."""
        settle = event.reservation_id is not None
        for attempt in range(self.attempts):
            try:
                outcome = self._add(event, settle=settle)
            except ServiceUnavailable:  # a concurrent transaction on the same total: try again shortly
                if attempt + 1 >= self.attempts:
                    raise
                self._sleep(0.05 * 2 ** attempt * (1 + random.random()))  # noqa: S311 - jitter
                continue
            if outcome == "reservation gone":
                settle = False  # the reservation was released meanwhile: count the event alone
                continue
            return outcome == "recorded"  # "duplicate": the marker exists, counted before
        raise ServiceUnavailable("The usage totals are busy; the event will be retried.")  # pragma: no cover

    def _add(self, event: UsageEvent, *, settle: bool) -> EventOutcome:
        moment = event.occurred
        now = utcnow()
        month, day = month_of(moment), moment.strftime("%Y-%m-%d")
        units = {name: value(event) for name, value in _UNITS}
        marker = {
            "PK": event.owner, "SK": keys.usage_event_marker_sk(event.event_id), "type": "USAGE_EVENT",
            "eventId": event.event_id, "engine": event.engine, "model": event.model, "operation": event.operation,
            "occurredAt": event.occurred_at, "recordedAt": iso_micros(now),
            "estimatedCostUsd": units["estimatedCostUsd"],
            "expiresAt": int((now + self.marker_ttl).timestamp()),
        }
        if event.reservation_id:
            marker["reservationId"] = event.reservation_id
        # committed* = recorded + still reserved (parley.usage.quota): the event's own units go in, and the
        # reservation it settles (if still open) comes out, in this same transaction.
        settlement = Settlement(
            month=event.reservation_id.split(".", 1)[0], attribute=reservation_attribute(event.reservation_id),
            tokens=Decimal(event.reserved_tokens), cost_units=cost_units(event.reserved_cost_usd),
        ) if settle and event.reservation_id else None
        return self.records.add_event(
            event.owner, marker, units, month=month, day=day, engine=event.engine, now=iso_micros(now),
            committed_tokens=units["totalTokens"], committed_cost_units=cost_units(event.estimated_cost_usd),
            settle=settlement)

    # -- reading ------------------------------------------------------------------------------
    def report(self, owner: str, month: str, quota: QuotaGuard) -> UsageReport:
        total = self.records.month_total(owner, month)
        days = self.records.days(owner, month)
        by_engine: dict[str, dict[str, Decimal]] = {}
        for item in days:
            sums = by_engine.setdefault(str(item["engine"]), {})
            for name, _ in _UNITS:
                sums[name] = sums.get(name, Decimal(0)) + Decimal(item.get(name, 0))
        status = quota.status(owner, month=month, total=total)
        return UsageReport(
            month=month,
            totals=UsageUnits.from_item(total),
            by_engine=[EngineUsage(engine=engine, **UsageUnits.from_item(sums).model_dump())
                       for engine, sums in sorted(by_engine.items())],
            days=[DayUsage(date=str(item["date"]), engine=str(item["engine"]),
                           **UsageUnits.from_item(item).model_dump()) for item in days],
            quota=QuotaOut.from_status(status),
        )


# -- the GET /usage answer ------------------------------------------------------------------------
class UsageUnits(ApiModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = Field(0, description="input + output + cache read + cache write")
    characters: int = Field(0, description="Polly characters synthesised")
    audio_seconds: float = Field(0, description="Transcribe audio seconds")
    web_searches: int = 0
    events: int = Field(0, description="Billable calls counted")
    estimated_cost_usd: float = 0

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> UsageUnits:
        values: dict[str, Any] = {}
        for name, _ in _UNITS:
            raw = Decimal(item.get(name, 0))
            values[name] = float(raw) if name in ("audioSeconds", "estimatedCostUsd") else int(raw)
        return cls.model_validate(values)


class EngineUsage(UsageUnits):
    engine: str


class DayUsage(UsageUnits):
    date: str
    engine: str


class QuotaOut(ApiModel):
    monthly_tokens: int | None = Field(description="The token limit; null = unlimited")
    monthly_cost_usd: float | None = Field(description="The cost limit in USD; null = unlimited")
    tokens_used: int = Field(description="Counted from usage events this month")
    cost_used_usd: float
    tokens_reserved: int = Field(0, description="Held by calls in progress (or not yet counted); released or "
                                                "replaced by what they used")
    cost_reserved_usd: float = 0
    tokens_remaining: int | None = Field(description="Limit - used - reserved; null = unlimited")
    cost_remaining_usd: float | None = Field(description="null = unlimited")
    exceeded: bool = Field(description="True when a limit is reached: billable calls answer 429")
    resets_at: str

    @classmethod
    def from_status(cls, status: QuotaStatus) -> QuotaOut:
        remaining_cost = status.cost_remaining_usd
        return cls(
            monthly_tokens=status.limits.monthly_tokens or None,
            monthly_cost_usd=status.limits.monthly_cost_usd or None,
            tokens_used=status.tokens, cost_used_usd=round(status.cost_usd, 10),
            tokens_reserved=status.reserved_tokens, cost_reserved_usd=round(status.reserved_cost_usd, 10),
            tokens_remaining=status.tokens_remaining,
            cost_remaining_usd=None if remaining_cost is None else round(remaining_cost, 10),
            exceeded=bool(status.over()),
            resets_at=status.resets_at,
        )


class UsageReport(ApiModel):
    month: str = Field(description="YYYY-MM (UTC)")
    totals: UsageUnits
    by_engine: list[EngineUsage]
    days: list[DayUsage] = Field(description="Per day and engine, in date order")
    quota: QuotaOut


def log_rejected(exc: MalformedUsageEvent, raw: Any) -> None:
    """Log why an event was refused, with enough of it to find it again in the DLQ."""
    detail = raw.get("detail") if isinstance(raw, dict) else None
    logger.error("Usage event rejected", extra={
        "reason": exc.message, "eventbridge_id": raw.get("id") if isinstance(raw, dict) else None,
        "event_id": detail.get("event_id") if isinstance(detail, dict) else None})
