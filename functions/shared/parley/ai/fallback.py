"""Anthropic first, Bedrock second, all inside the caller's deadline - and a circuit breaker.

``FallbackProvider(primary, secondary, breaker)`` owns every retry of the provider layer (the SDKs'
own retries are off) and takes each one from the request's deadline:

- with a secondary configured, the primary may use the time left less the secondary's share
  (``FALLBACK_SHARE`` of it, at least ``MIN_FALLBACK_SECONDS``); the secondary gets everything that
  is left when it is asked;
- each attempt's timeout is what is left of its engine's share (capped by the engine's own
  ``AI_TIMEOUT_SECONDS``); an attempt is not started with less than ``MIN_ATTEMPT_SECONDS`` left;
- a retryable failure (throttled, overloaded, 5xx, timeout) is retried, up to ``MAX_ATTEMPTS`` per
  engine, only if the wait the engine asked for (``retry-after``, else a short backoff) and another
  attempt still fit in that share - a 429 asking for 45 s goes straight to the secondary;
- on ``ProviderError`` the secondary answers, and the answer says so (``engine`` = who answered,
  ``fallback_from`` = who failed). ``ProviderMisconfigured`` (retired model, key or permission
  refused) falls back too, and is logged as an ERROR for the operator with the
  ``ProviderConfigErrors`` metric, which has an alarm;
- never falls back on ``ProviderRejected`` (the request itself is wrong: the secondary would
  refuse it too, and paying twice for that helps nobody), nor on a refusal (an answer);
- for a stream, retries and falls back only before the first text delta: once text has reached the
  caller it cannot be taken back, so a later failure is raised.

With no secondary it still retries, counts and breaks: an open breaker answers at once with a
``ProviderError`` instead of waiting on an engine that has just failed several times in a row.

Metrics (CloudWatch EMF through Powertools, dimension ``Engine`` plus ``service``):
``ProviderCalls`` per attempt, ``ProviderFailures`` per failed attempt, ``ProviderFallbacks`` per
answer the secondary gave instead of the primary (dimension: the primary that failed),
``ProviderConfigErrors`` per ``ProviderMisconfigured``.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterator

from parley.ai.deadline import MIN_ATTEMPT_SECONDS, Deadline
from parley.ai.errors import ProviderError, ProviderMisconfigured
from parley.ai.types import AiAnswer, AiProvider, AiRequest, UsageReport, Wrapper
from parley.core.observability import logger

Emit = Callable[[str, str], None]

FALLBACK_SHARE = 0.45  # of the time left, kept for the secondary while the primary is tried
MIN_FALLBACK_SECONDS = 5.0
MAX_ATTEMPTS = 3  # per engine, per call
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 4.0
DEFAULT_DEADLINE_SECONDS = 25.0  # for a request that carries no deadline of its own


def emit_metric(name: str, engine: str) -> None:
    """One count with dimension Engine, flushed at once (no handler decorator needed)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from parley.core.observability import metrics

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


class FallbackProvider(Wrapper):
    def __init__(self, primary: AiProvider, secondary: AiProvider | None, breaker: CircuitBreaker, *,
                 emit: Emit = emit_metric, jitter: Callable[[], float] = random.random) -> None:
        self.wrapped = primary
        self.secondary = secondary
        self.breaker = breaker
        self.emit = emit
        self.jitter = jitter

    @property
    def primary(self) -> AiProvider:
        """The engine asked first (the one whose engine and model this provider answers for)."""
        return self.wrapped

    # -- time --------------------------------------------------------------------------------
    @staticmethod
    def deadline_of(request: AiRequest) -> Deadline:
        return request.deadline or Deadline.after(DEFAULT_DEADLINE_SECONDS)

    def primary_share(self, deadline: Deadline) -> Deadline:
        """The primary's deadline: the caller's, less what the secondary keeps for itself."""
        if self.secondary is None:
            return deadline
        reserve = max(MIN_FALLBACK_SECONDS, FALLBACK_SHARE * deadline.remaining())
        return deadline.earlier(reserve)

    def backoff(self, attempt: int) -> float:
        delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        return delay * (0.5 + self.jitter() / 2)

    def _retry_wait(self, exc: ProviderError, attempt: int, until: Deadline) -> float | None:
        """How long to wait before the next attempt, or None when there is to be none."""
        if not exc.retryable or attempt >= MAX_ATTEMPTS:
            return None
        wait = exc.retry_after if exc.retry_after is not None else self.backoff(attempt)
        if wait + MIN_ATTEMPT_SECONDS > until.remaining():
            logger.info("Not retrying: the wait does not fit the time left",
                        extra={"engine": exc.engine, "wait_s": round(wait, 2), "left_s": round(until.remaining(), 2)})
            return None
        return wait

    def _misconfigured(self, exc: ProviderMisconfigured) -> None:
        self.emit("ProviderConfigErrors", exc.engine)
        logger.error("AI engine misconfigured: the deployment must change a setting", extra={
            "engine": exc.engine, "model": exc.model, "reason": exc.message, "operator_action": exc.operator_action,
            "upstream_status": exc.upstream_status})

    def _no_time(self, engine: AiProvider) -> ProviderError:
        return ProviderError(f"No time left in this request to ask {engine.engine}.", engine=engine.engine,
                             retryable=True)

    # -- one engine, retried within its share ----------------------------------------------------
    def _attempts(self, engine: AiProvider, request: AiRequest, until: Deadline) -> AiAnswer:
        attempt = 0
        while True:
            if until.remaining() < MIN_ATTEMPT_SECONDS:
                raise self._no_time(engine)
            self.emit("ProviderCalls", engine.engine)
            try:
                return engine.complete(dataclasses.replace(request, deadline=until))
            except ProviderError as exc:
                self.emit("ProviderFailures", engine.engine)
                if isinstance(exc, ProviderMisconfigured):
                    self._misconfigured(exc)
                attempt += 1
                wait = self._retry_wait(exc, attempt, until)
                if wait is None:
                    raise
                logger.info("AI engine busy; retrying", extra={"engine": engine.engine, "attempt": attempt,
                                                                "wait_s": round(wait, 2)})
                until.sleep(wait)

    def _stream_attempts(self, engine: AiProvider, request: AiRequest,
                         until: Deadline) -> Iterator[str | UsageReport | AiAnswer]:
        attempt = 0
        while True:
            if until.remaining() < MIN_ATTEMPT_SECONDS:
                raise self._no_time(engine)
            self.emit("ProviderCalls", engine.engine)
            started = False
            try:
                for item in engine.stream(dataclasses.replace(request, deadline=until)):
                    if isinstance(item, str):
                        started = True
                    yield item
                return
            except ProviderError as exc:
                self.emit("ProviderFailures", engine.engine)
                if isinstance(exc, ProviderMisconfigured):
                    self._misconfigured(exc)
                if started:
                    raise  # text has reached the caller: retrying or switching now would garble it
                attempt += 1
                wait = self._retry_wait(exc, attempt, until)
                if wait is None:
                    raise
                until.sleep(wait)

    # -- the chain -------------------------------------------------------------------------------
    def _skipped(self) -> ProviderError:
        return ProviderError(f"{self.primary.engine} is failing; not calling it for a while (circuit open).",
                             engine=self.primary.engine, retryable=True)

    def _failed(self, exc: ProviderError) -> None:
        self.breaker.failure()
        logger.warning("AI engine failed", extra={"engine": self.primary.engine, "reason": exc.message,
                                                   "retryable": exc.retryable, "breaker": self.breaker.state})

    def complete(self, request: AiRequest) -> AiAnswer:
        deadline = self.deadline_of(request)
        if not self.breaker.allow():
            return self._secondary_complete(request, deadline, self._skipped())
        try:
            answer = self._attempts(self.primary, request, self.primary_share(deadline))
        except ProviderError as exc:
            self._failed(exc)
            return self._secondary_complete(request, deadline, exc)
        self.breaker.success()
        return answer

    def _secondary_complete(self, request: AiRequest, deadline: Deadline, cause: ProviderError) -> AiAnswer:
        if self.secondary is None:
            raise cause
        answer = self._attempts(self.secondary, request, deadline)
        self.emit("ProviderFallbacks", self.primary.engine)
        return dataclasses.replace(answer, fallback_from=self.primary.engine)

    def stream(self, request: AiRequest) -> Iterator[str | UsageReport | AiAnswer]:
        deadline = self.deadline_of(request)
        if not self.breaker.allow():
            yield from self._secondary_stream(request, deadline, self._skipped())
            return
        started = False
        try:
            for item in self._stream_attempts(self.primary, request, self.primary_share(deadline)):
                if isinstance(item, str):
                    started = True
                yield item
        except ProviderError as exc:
            self._failed(exc)
            if started:
                raise
            yield from self._secondary_stream(request, deadline, exc)
            return
        self.breaker.success()

    def _secondary_stream(self, request: AiRequest, deadline: Deadline,
                          cause: ProviderError) -> Iterator[str | UsageReport | AiAnswer]:
        if self.secondary is None:
            raise cause
        for item in self._stream_attempts(self.secondary, request, deadline):
            if isinstance(item, AiAnswer):
                self.emit("ProviderFallbacks", self.primary.engine)
                item = dataclasses.replace(item, fallback_from=self.primary.engine)
            yield item
