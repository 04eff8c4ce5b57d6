"""The usage recorder: adds each "usage recorded" event, exactly once per event id, to the owner's
monthly total and daily-per-engine total.

Two triggers, one job:
- the EventBridge rule on the app's bus (``source: parley``, ``detail-type: UsageRecorded``): one event
  per invocation; an error makes EventBridge / Lambda retry, then the event lands in the usage DLQ;
- the usage parking queue (SQS, partial batch failures): events a publisher could not put on the
  bus, and DLQ messages an operator moved back there to replay them.
A malformed event is rejected with its reason logged and raised, never half-applied.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core import clients
from parley.core.config import UsageRecorderEnv
from parley.core.errors import MalformedUsageEvent
from parley.core.observability import logger, metrics, tracer
from parley.data.store import Store
from parley.usage.ledger import UsageLedger, log_rejected, parse_usage_event

ENV = UsageRecorderEnv.load(os.environ)
processor = BatchProcessor(event_type=EventType.SQS)


def ledger() -> UsageLedger:
    return UsageLedger(Store(clients.table(ENV.table_name)), marker_days=ENV.usage_marker_days)


def count(raw: Any) -> bool:
    """Count one EventBridge-shaped event; True if counted now, False if it had been already."""
    try:
        event = parse_usage_event(raw)
    except MalformedUsageEvent as exc:
        log_rejected(exc, raw)
        metrics.add_metric(name="UsageEventsRejected", unit=MetricUnit.Count, value=1)
        raise
    counted = ledger().record(event)
    metrics.add_metric(name="UsageEventsRecorded" if counted else "UsageEventsDuplicate", unit=MetricUnit.Count,
                       value=1)
    logger.info("Usage event counted" if counted else "Usage event already counted; ignored",
                extra={"event_id": event.event_id, "engine": event.engine, "operation": event.operation})
    return counted


def record_parked(record: SQSRecord) -> None:
    try:
        raw = json.loads(record.body)
    except json.JSONDecodeError as exc:
        rejected = MalformedUsageEvent(f"The queued message is not JSON: {exc}")
        log_rejected(rejected, {})
        raise rejected from exc
    count(raw)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:  # the parking queue
        return process_partial_response(event=event, record_handler=record_parked, processor=processor,
                                        context=context)
    return {"counted": count(event)}
