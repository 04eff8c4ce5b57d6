"""Monthly quotas per owner, checked before any billable call.

The limits are the template's defaults (``QuotaMonthlyTokens``, ``QuotaMonthlyCostUsd``; 0 means
unlimited) unless the owner has a ``QUOTA`` override item (``PK=<owner>, SK=QUOTA,
monthlyTokens, monthlyCostUsd``; an attribute left out keeps the default). Over a limit,
``check`` raises ``QuotaExceeded`` (429) naming the limit, the usage and the reset time, and the
caller makes no provider call.

The usage compared is the owner's monthly total as the recorder has counted it. Events reach the
total through the bus within about a second, so calls already in flight when the limit is reached
can overshoot it a little: the quota is a guard against runaway use, not a billing ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import keys
from .errors import QuotaExceeded
from .ids import utcnow
from .store import Store


@dataclass(frozen=True)
class Limits:
    monthly_tokens: int  # model tokens (input + output + cache read + cache write), all engines; 0 = unlimited
    monthly_cost_usd: float  # estimated cost, all engines; 0 = unlimited


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def month_start(month: str) -> datetime:
    return datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)


def tokens_of(total: dict[str, Any]) -> int:
    """Model tokens in a usage total item (``totalTokens``; older items: input + output)."""
    if "totalTokens" in total:
        return int(total["totalTokens"])
    return int(total.get("inputTokens", 0)) + int(total.get("outputTokens", 0))


def next_month_start(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class QuotaStatus:
    month: str
    limits: Limits
    tokens: int
    cost_usd: float
    resets_at: str

    @property
    def tokens_remaining(self) -> int | None:
        return None if not self.limits.monthly_tokens else max(0, self.limits.monthly_tokens - self.tokens)

    @property
    def cost_remaining_usd(self) -> float | None:
        return None if not self.limits.monthly_cost_usd else max(0.0, self.limits.monthly_cost_usd - self.cost_usd)


class QuotaGuard:
    def __init__(self, store: Store, defaults: Limits) -> None:
        self.store = store
        self.defaults = defaults

    def limits_for(self, owner: str) -> Limits:
        override: dict[str, Any] | None = self.store.get(owner, keys.QUOTA_SK)
        if not override:
            return self.defaults
        return Limits(
            monthly_tokens=int(override.get("monthlyTokens", self.defaults.monthly_tokens)),
            monthly_cost_usd=float(override.get("monthlyCostUsd", self.defaults.monthly_cost_usd)),
        )

    def status(self, owner: str, now: datetime | None = None, *, month: str | None = None,
               total: dict[str, Any] | None = None) -> QuotaStatus:
        """The owner's limits and usage for ``month`` (default: the month of ``now``).

        ``total`` is the month's total item when the caller has already read it."""
        moment = now or utcnow()
        month = month or month_of(moment)
        if total is None:
            total = self.store.get(owner, keys.usage_month_sk(month)) or {}
        return QuotaStatus(month=month, limits=self.limits_for(owner), tokens=tokens_of(total),
                           cost_usd=float(total.get("estimatedCostUsd", 0)),
                           resets_at=next_month_start(month_start(month)).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def check(self, owner: str, now: datetime | None = None) -> QuotaStatus:
        """Raise QuotaExceeded if the owner has used up a monthly limit; else the status."""
        moment = now or utcnow()
        status = self.status(owner, moment)
        over = []
        if status.limits.monthly_tokens and status.tokens >= status.limits.monthly_tokens:
            over.append({"limit": "monthlyTokens", "limitValue": status.limits.monthly_tokens, "used": status.tokens})
        if status.limits.monthly_cost_usd and status.cost_usd >= status.limits.monthly_cost_usd:
            over.append({"limit": "monthlyCostUsd", "limitValue": status.limits.monthly_cost_usd,
                         "used": round(status.cost_usd, 6)})
        if over:
            names = " and ".join(str(o["limit"]) for o in over)
            raise QuotaExceeded(
                f"Monthly quota reached ({names}) for {status.month}; it resets at {status.resets_at}.",
                details=[{**o, "resetsAt": status.resets_at} for o in over],
                headers={"Retry-After": str(int((next_month_start(moment) - moment).total_seconds()))},
            )
        return status


def limits_from(env: Any) -> Limits:
    """The default limits from a function's environment (``parley.config.MeteringEnv``)."""
    return Limits(monthly_tokens=env.quota_monthly_tokens, monthly_cost_usd=env.quota_monthly_cost_usd)


def guard_from(env: Any, store: Store) -> QuotaGuard:
    return QuotaGuard(store, limits_from(env))
