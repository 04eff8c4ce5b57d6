"""The streamed tutor turn's timings (``parley.tutor.voice_turn``): each one a CloudWatch metric."""

from __future__ import annotations

from collections.abc import Callable

from parley.core.observability import logger

Emit = Callable[[str, float, str], None]  # (metric name, milliseconds, engine)



def emit_timing(name: str, milliseconds: float, engine: str) -> None:
    """One timing (CloudWatch EMF through Powertools) with dimension Engine, flushed at once."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from parley.core.observability import metrics

    try:
        with single_metric(name=name, unit=MetricUnit.Milliseconds, value=round(milliseconds, 1),
                           namespace=metrics.namespace) as metric:
            metric.add_dimension(name="Engine", value=engine or "unknown")
    except Exception:  # a metric must never fail a turn
        logger.warning("Could not emit metric", extra={"metric": name})
