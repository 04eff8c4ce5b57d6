"""The time an AI call may take, counted down from the function's own limit.

A ``Deadline`` is a point on a monotonic clock by which the caller must have its answer (or its
503). Every provider call takes its timeout and its retries from it: an attempt never waits past it,
a retry is made only if the wait the engine asks for (``retry-after``) and one more attempt still
fit, and the fallback keeps its share so it can still answer. In production the deadline comes from
the Lambda context (``Deadline.from_context``); tests pass a fake clock and a sleep that advances it,
so the arithmetic is asserted without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], None]

MIN_ATTEMPT_SECONDS = 2.0  # an attempt with less time than this left is not started


@dataclass(frozen=True)
class Deadline:
    """``at`` is a ``clock()`` value; ``sleep`` waits (a test's advances its fake clock)."""

    at: float
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)
    sleep: Sleep = field(default=time.sleep, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> Deadline:
        return cls(clock() + seconds, clock, sleep)

    @classmethod
    def from_context(cls, context: Any, *, margin: float, clock: Clock = time.monotonic,
                     sleep: Sleep = time.sleep) -> Deadline:
        """The Lambda's own limit (``get_remaining_time_in_millis``) less ``margin`` seconds kept
        back to save the result and answer."""
        remaining = context.get_remaining_time_in_millis() / 1000
        return cls(clock() + max(0.0, remaining - margin), clock, sleep)

    def remaining(self) -> float:
        return self.at - self.clock()

    def earlier(self, seconds: float) -> Deadline:
        """The same clock, ``seconds`` sooner (the share kept back for a fallback or a retry)."""
        return Deadline(self.at - seconds, self.clock, self.sleep)

    def within(self, cap: float) -> float:
        """How long one attempt may wait: ``cap`` (the engine's own timeout) or what is left."""
        return max(0.0, min(cap, self.remaining()))
