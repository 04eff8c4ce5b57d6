"""The "usage recorded" event: one per billable call, published on the app's EventBridge bus.

Every billable call (model tokens, Polly characters, Transcribe seconds) publishes exactly one
``UsageEvent`` through ``UsagePublisher.publish``; the usage recorder adds it, once per event id,
to the owner's monthly and daily-per-engine totals.

The publisher prices the event (``parley.usage.pricing``) so every producer gets the same estimate, and
never fails the caller: a PutEvents error or a failed entry is retried briefly, then the event is
parked on the usage parking queue (which the recorder consumes too), and if even that fails the
whole event is logged at ERROR level, from where it can be replayed by hand.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parley.core.ids import iso_micros, utcnow
from parley.core.observability import logger
from parley.usage.pricing import DEFAULT_PRICES, PriceTable

if TYPE_CHECKING:
    from parley.usage.quota import Reservation

SOURCE = "parley"
DETAIL_TYPE = "UsageRecorded"
Product = Literal["tutor", "proofreading"]
UsageEngine = Literal["anthropic", "bedrock", "offline", "polly", "transcribe"]
REDACTED_OWNER = "(redacted)"
RESERVATION_ID_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])\.[0-9A-HJKMNP-TV-Z]{26}$"  # <YYYY-MM>.<ULID>


class UsageEvent(BaseModel):
    """The event contract (EventBridge ``detail``), documented in docs/api/usage.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=8, max_length=64)
    owner: str = Field(pattern=r"^(DEVICE|USER)#[A-Za-z0-9._-]{1,128}$")
    product: Product
    engine: UsageEngine
    model: str = Field(min_length=1, max_length=128, description=(
        "The model id for AI engines; the voice engine for polly (standard, neural, long-form, generative); "
        "standard or streaming for transcribe"))
    operation: str = Field(min_length=1, max_length=64, description="chat, analysis, proofread, tts, stt…")
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    characters: int = Field(0, ge=0)
    audio_seconds: float = Field(0, ge=0)
    web_searches: int = Field(0, ge=0)
    estimated_cost_usd: float = Field(0, ge=0, description="Set by UsagePublisher from the price table")
    occurred_at: str = Field(default_factory=lambda: iso_micros(utcnow()))
    reservation_id: str | None = Field(None, pattern=RESERVATION_ID_PATTERN, description=(
        "The quota reservation this call held (parley.usage.quota): the recorder settles it with this event"))
    reserved_tokens: int = Field(0, ge=0, description="The tokens that reservation held")
    reserved_cost_usd: float = Field(0, ge=0, description="The cost that reservation held")

    @field_validator("occurred_at")
    @classmethod
    def _iso_with_zone(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("occurred_at must be an ISO 8601 timestamp") from exc
        if moment.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone (e.g. Z)")
        return iso_micros(moment)

    @property
    def occurred(self) -> datetime:
        return datetime.fromisoformat(self.occurred_at.replace("Z", "+00:00"))

    def settling(self, reservation: Reservation | None) -> UsageEvent:
        """This event, naming the reservation it settles (if any)."""
        if reservation is None:
            return self
        return self.model_copy(update={"reservation_id": reservation.id, "reserved_tokens": reservation.tokens,
                                       "reserved_cost_usd": reservation.cost_usd})

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def entry(self, bus_name: str) -> dict[str, Any]:
        """The PutEvents entry for this event."""
        return {"Source": SOURCE, "DetailType": DETAIL_TYPE, "EventBusName": bus_name,
                "Detail": self.model_dump_json()}

    def envelope(self) -> dict[str, Any]:
        """The event as EventBridge delivers it to a target (the shape the recorder reads)."""
        return {"version": "0", "id": str(uuid.uuid4()), "source": SOURCE, "detail-type": DETAIL_TYPE,
                "time": self.occurred_at[:19] + "Z", "resources": [], "detail": self.model_dump(mode="json")}


class PublishOutcome(StrEnum):
    PUBLISHED = "published"  # accepted by EventBridge
    PARKED = "parked"  # on the usage parking queue; the recorder consumes it from there
    LOGGED = "logged"  # neither worked: the whole event is in the ERROR log line


class UsagePublisher:
    """Publishes usage events on the app's bus: the ONE helper every billable call uses.

    ``UsagePublisher(events_client, bus_name).publish(event)`` prices the event and puts it on the
    bus. ``publish`` never raises: it retries briefly (``attempts``, on an exception or a failed
    entry; botocore already retries throttling inside each attempt), then parks the event on
    ``parking_queue_url`` and logs a warning, or — without a parking queue, or if parking fails
    too — logs the whole event at ERROR level. The user's answer is never failed for metering.
    """

    def __init__(self, events_client: Any, bus_name: str, *, prices: PriceTable | None = None,
                 parking_queue_url: str = "", sqs_client: Any = None, attempts: int = 3,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.events = events_client
        self.bus_name = bus_name
        self.prices = prices or DEFAULT_PRICES
        self.parking_queue_url = parking_queue_url
        self._sqs = sqs_client
        self.attempts = max(1, attempts)
        self._sleep = sleep

    def priced(self, event: UsageEvent) -> UsageEvent:
        """The event with ``estimated_cost_usd`` from this publisher's price table."""
        return event.model_copy(update={"estimated_cost_usd": self.prices.cost(event)})

    def publish(self, event: UsageEvent) -> PublishOutcome:
        try:
            event = self.priced(event)
        except Exception:  # pricing must not cost the user their answer; record it unpriced
            logger.exception("Could not price a usage event", extra={"event_id": event.event_id})
        reason = ""
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(0.05 * 2 ** (attempt - 1))
            try:
                result = self.events.put_events(Entries=[event.entry(self.bus_name)])
            except Exception as exc:  # any failure of the bus call is parked, not raised
                reason = f"{type(exc).__name__}: {exc}"
                continue
            if not result.get("FailedEntryCount"):
                return PublishOutcome.PUBLISHED
            failed = (result.get("Entries") or [{}])[0]
            reason = f"{failed.get('ErrorCode', 'FailedEntry')}: {failed.get('ErrorMessage', '')}"
        return self._park(event, reason)

    def _park(self, event: UsageEvent, reason: str) -> PublishOutcome:
        details = {"event_id": event.event_id, "reason": reason}
        if self.parking_queue_url:
            try:
                body = {**event.envelope(), "parked": {"reason": reason[:500], "at": iso_micros(utcnow())}}
                self._sqs_client().send_message(QueueUrl=self.parking_queue_url, MessageBody=json.dumps(body))
                logger.warning("Usage event parked: the bus refused it", extra=details)
                return PublishOutcome.PARKED
            except Exception as exc:
                details["parking_error"] = f"{type(exc).__name__}: {exc}"
        # The owner (a bearer credential in device mode) never goes into a log: the line carries the
        # invocation's owner_hash and the event's reservation_id, whose month item names the owner.
        envelope = event.envelope()
        envelope["detail"]["owner"] = REDACTED_OWNER
        logger.error("Usage event NOT delivered; replay it from this log line (owner: see docs/api/usage.md)",
                     extra={**details, "usage_event": envelope})
        return PublishOutcome.LOGGED

    def _sqs_client(self) -> Any:
        if self._sqs is None:
            from parley.core import clients

            self._sqs = clients.client("sqs")
        return self._sqs


def publisher_from(env: Any, *, events_client: Any = None, sqs_client: Any = None) -> UsagePublisher:
    """A publisher configured from a function's environment (``parley.core.config.MeteringEnv``)."""
    from parley.core import clients

    return UsagePublisher(
        events_client or clients.client("events"), env.event_bus_name,
        prices=PriceTable.with_overrides(env.price_table_overrides),
        parking_queue_url=env.usage_parking_queue_url, sqs_client=sqs_client,
    )
