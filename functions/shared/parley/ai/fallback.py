"""Anthropic first, Bedrock second — and a circuit breaker so a failing primary is left alone.

``FallbackProvider(primary, secondary, breaker)``:

- calls the primary unless its breaker is open;
- on ``ProviderError`` (throttled, overloaded, 5xx, timeout, unreachable, our key refused) it asks
  the secondary, and the answer says so (``engine`` = who answered, ``fallback_from`` = who failed);
- never falls back on ``ProviderRejected`` (the request itself is wrong: the secondary would
  refuse it too, and paying twice for that helps nobody);
- for a stream, falls back only before the first text delta: once text has reached the caller
  it cannot be taken back, so a later failure is raised.

With no secondary it still counts and breaks: an open breaker answers at once with a
``ProviderError`` instead of waiting on an engine that has just failed several times in a row.

Metrics (CloudWatch EMF through Powertools, dimension ``Engine`` plus ``service``):
``ProviderCalls`` per attempt, ``ProviderFailures`` per ``ProviderError``, ``ProviderFallbacks``
per answer the secondary gave instead of the primary (dimension: the primary that failed).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from ..observability import logger
from .types import AiAnswer, AiProvider, AiRequest, Engine, ProviderError

Emit = Callable[[str, str], None]


def emit_metric(name: str, engine: str) -> None:
    """One count with dimension Engine, flushed at once (no handler decorator needed)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from ..observability import metrics

    try:
        with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
            metric.add_dimension(name="Engine", value=engine)
    except Exception:  # a metric must never fail an answer
        logger.warning("Could not emit metric", extra={"metric": name, "engine": engine})


class CircuitBreaker:
    """Consecutive-failure breaker, one per engine per execution environment.

    Closed: calls go through. After ``threshold`` consecutive failures it opens for ``cooldown``
    seconds: calls are refused (``allow()`` is False). After the cool-down one trial call is let
    through (half-open): success closes it, failure opens it again for another cool-down.
    """

    def __init__(self, *, threshold: int = 3, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.open_until: float | None = None

    @property
    def state(self) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if self.clock() < self.open_until else "half-open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures = 0
        self.open_until = None

    def failure(self) -> None:
        self.failures += 1
        if self.open_until is not None or self.failures >= self.threshold:
            self.open_until = self.clock() + self.cooldown


class FallbackProvider:
    def __init__(self, primary: AiProvider, secondary: AiProvider | None, breaker: CircuitBreaker, *,
                 emit: Emit = emit_metric) -> None:
        self.primary = primary
        self.secondary = secondary
        self.breaker = breaker
        self.emit = emit

    @property
    def engine(self) -> Engine:
        return self.primary.engine

    @property
    def model(self) -> str:
        return self.primary.model

    def _primary_request(self, request: AiRequest) -> AiRequest:
        """With a secondary waiting, the primary gets part of the time budget, not all of it."""
        if self.secondary is None or not request.timeout_seconds:
            return request
        return dataclasses.replace(request, timeout_seconds=max(1.0, request.timeout_seconds * 0.55))

    def _skipped(self) -> ProviderError:
        return ProviderError(f"{self.primary.engine} is failing; not calling it for a while (circuit open).",
                             engine=self.primary.engine, retryable=True)

    def _failed(self, exc: ProviderError) -> None:
        self.breaker.failure()
        self.emit("ProviderFailures", self.primary.engine)
        logger.warning("AI engine failed", extra={"engine": self.primary.engine, "reason": exc.message,
                                                   "retryable": exc.retryable, "breaker": self.breaker.state})

    def _secondary_complete(self, request: AiRequest, cause: ProviderError) -> AiAnswer:
        if self.secondary is None:
            raise cause
        self.emit("ProviderCalls", self.secondary.engine)
        try:
            answer = self.secondary.complete(request)
        except ProviderError:
            self.emit("ProviderFailures", self.secondary.engine)
            raise
        self.emit("ProviderFallbacks", self.primary.engine)
        return dataclasses.replace(answer, fallback_from=self.primary.engine)

    def complete(self, request: AiRequest) -> AiAnswer:
        if not self.breaker.allow():
            return self._secondary_complete(request, self._skipped())
        self.emit("ProviderCalls", self.primary.engine)
        try:
            answer = self.primary.complete(self._primary_request(request))
        except ProviderError as exc:
            self._failed(exc)
            return self._secondary_complete(request, exc)
        self.breaker.success()
        return answer

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        if not self.breaker.allow():
            yield from self._secondary_stream(request, self._skipped())
            return
        self.emit("ProviderCalls", self.primary.engine)
        started = False
        try:
            for item in self.primary.stream(self._primary_request(request)):
                if isinstance(item, str):
                    started = True
                yield item
        except ProviderError as exc:
            self._failed(exc)
            if started:
                raise  # text has reached the caller: switching engines now would garble the answer
            yield from self._secondary_stream(request, exc)
            return
        self.breaker.success()

    def _secondary_stream(self, request: AiRequest, cause: ProviderError) -> Iterator[str | AiAnswer]:
        if self.secondary is None:
            raise cause
        self.emit("ProviderCalls", self.secondary.engine)
        try:
            for item in self.secondary.stream(request):
                if isinstance(item, AiAnswer):
                    self.emit("ProviderFallbacks", self.primary.engine)
                    item = dataclasses.replace(item, fallback_from=self.primary.engine)
                yield item
        except ProviderError:
            self.emit("ProviderFailures", self.secondary.engine)
            raise
