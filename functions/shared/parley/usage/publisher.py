"""Publishing "usage recorded" events on the app's EventBridge bus (the event itself: ``parley.usage.events``).

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
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from parley.core.ids import iso_micros, utcnow
from parley.core.observability import logger
from parley.usage.events import REDACTED_OWNER, UsageEvent
from parley.usage.pricing import DEFAULT_PRICES, PriceTable


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
