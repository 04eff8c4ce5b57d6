"""A per-owner rate limit the WebSocket message function enforces itself.

API Gateway throttles a WebSocket stage (and its routes) for all clients together, and WAF cannot
be attached to a WebSocket API, so nothing in front of the message function keeps one client from
taking the whole stage's rate. The function counts each owner's messages in fixed windows (one
UpdateItem a message: ``ADD`` on ``PK=<owner>, SK=RATE#<what>#<window start>``, which expires with
the table's TTL): over ``limit`` in a window, a message is answered ``THROTTLED`` and not acted on;
at ``disconnect_after`` × ``limit`` the connection is closed, so a flood stops spending the stage's
shared rate (a reconnect is authorised again, and counted under the same owner).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from parley.data.store import Store
from parley.data.usage import UsageRecords

WINDOW_SECONDS = 60


def wall_clock() -> float:
    return time.time()


@dataclass(frozen=True)
class Decision:
    count: int
    limit: int
    retry_after: int
    close: bool  # so far over that the connection should be closed

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit


@dataclass
class RateLimiter:
    store: Store
    _: KW_ONLY
    limit: int
    window_seconds: int = WINDOW_SECONDS
    disconnect_after: float = 2.0
    clock: Callable[[], float] | None = None
    records: UsageRecords = field(init=False)

    def __post_init__(self) -> None:
        self.records = UsageRecords(self.store)

    def hit(self, owner: str, what: str) -> Decision:
        """Count one request of ``owner`` for ``what`` and say whether it is within the limit."""
        now = (self.clock or wall_clock)()
        start = int(now // self.window_seconds) * self.window_seconds
        count = self.records.count_request(owner, what, start, expires=start + 2 * self.window_seconds)
        return Decision(count=count, limit=self.limit, retry_after=max(1, int(start + self.window_seconds - now)),
                        close=count > self.limit * self.disconnect_after)
