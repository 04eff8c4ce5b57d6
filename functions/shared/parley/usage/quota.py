"""Monthly quotas per owner, enforced by reservations taken before every billable call.

The limits are the template's defaults (``QuotaMonthlyTokens``, ``QuotaMonthlyCostUsd``; 0 means
unlimited) unless the owner has a ``QUOTA`` override item (``PK=<owner>, SK=QUOTA,
monthlyTokens, monthlyCostUsd``; an attribute left out keeps the default).

**Reservations.** Before a billable call, ``reserve(owner, bound)`` makes ONE atomic conditional
write — an UpdateItem of the owner's monthly total item — that adds the call's *bound* (the most
that call can use, e.g. the prompt's bytes plus the answer's ``max_tokens``, and its price) to
``committedTokens`` and ``committedCostUnits`` (integer units of 1e-10 USD, the price table's
precision: integers add up exactly in DynamoDB and in its emulator) and records the reservation in the same item
(attribute ``reservation#<ULID>``: amounts, operation, ``settleBy``), on condition that the month
is still under every limit. Over a limit the condition fails and the caller gets
``QuotaExceeded`` (429) without making the call. Every reservation is admitted only while the
month is under the limit and no call can use more than its bound, so a month ends at most ONE
reservation over its limit, however many calls race for the last of it: DynamoDB applies
conditional writes to one item one at a time.

The reservation is settled with what the call really used:

- the call's usage event names its reservation; the usage recorder, in the transaction that
  counts the event (exactly once per event id), removes the reservation and replaces the
  reserved amount by the real one in ``committed*`` (``parley.usage.ledger``);
- a call that failed without usage releases it at once (``release``);
- a reservation nobody settled (the function crashed, or its event was lost) is released once its
  ``settleBy`` time has passed (15 minutes by default; longer for the transcription workflow),
  the next time it could stand in its owner's way: a reservation (or ``check``) that finds the
  month over a limit first releases the month's overdue reservations and tries once more
  (``release_expired``).

Removing the reservation attribute is conditional on it still being there, in the same write that
takes its amounts back, so a reservation is settled or released exactly once whoever gets there
first (the recorder, the caller, the reconciliation). ``committedTokens`` is the tokens the
recorder has counted plus the reservations still open, and the same for the cost: a call is never
counted twice (once reserved, once recorded). Months written before reservations existed have only
the recorded totals; the condition checks those too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from parley.core.errors import QuotaExceeded
from parley.core.ids import iso_micros, new_ulid, utcnow
from parley.core.observability import logger
from parley.data.store import Store
from parley.data.usage import Hold, UsageRecords

COST_QUANTUM = Decimal("1e-10")
COST_UNITS_PER_USD = 10**10
# How long a reservation may stay open before it counts as abandoned, by kind of call: longer
# than the Lambda timeout of the function that settles it, plus event delivery.
SETTLE_WITHIN_SECONDS = 15 * 60
RESERVATION_PREFIX = "reservation#"


@dataclass(frozen=True)
class Limits:
    monthly_tokens: int  # model tokens (input + output + cache read + cache write), all engines; 0 = unlimited
    monthly_cost_usd: float  # estimated cost, all engines; 0 = unlimited

    @property
    def unlimited(self) -> bool:
        return not self.monthly_tokens and not self.monthly_cost_usd


@dataclass(frozen=True)
class Bound:
    """The most one billable call can use: what its reservation holds until it is settled."""

    tokens: int = 0
    cost_usd: float = 0.0

    @property
    def cost(self) -> Decimal:
        return number(Decimal(str(self.cost_usd)).quantize(COST_QUANTUM))


def cost_units(usd: float | Decimal) -> int:
    """A cost in integer units of 1e-10 USD (rounded up: a reservation never holds less)."""
    return int((Decimal(str(usd)) * COST_UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class Reservation:
    """An open reservation: ``id`` is ``<YYYY-MM>.<ULID>`` (the month it was taken in, then a
    unique id), which the call's usage event carries so the recorder can settle it."""

    id: str
    owner: str
    tokens: int
    cost_usd: float

    @property
    def month(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def attribute(self) -> str:
        return reservation_attribute(self.id)

    @property
    def cost_units(self) -> int:
        return cost_units(self.cost_usd)


def number(value: Decimal) -> Decimal:
    """``value`` as a DynamoDB number that every reader parses alike: 0 as ``0``, and never a bare
    exponent such as ``3E-10`` (DynamoDB reads it, but moto's ADD does not)."""
    if value == 0:
        return Decimal(0)
    if "E" in str(value) and "." not in str(value):
        return value.quantize(Decimal(1).scaleb(value.as_tuple().exponent - 1))  # type: ignore[operator]
    return value


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
    tokens: int  # recorded by the usage recorder
    cost_usd: float
    resets_at: str
    reserved_tokens: int = 0  # held by reservations still open
    reserved_cost_usd: float = 0.0

    @property
    def tokens_committed(self) -> int:
        return self.tokens + self.reserved_tokens

    @property
    def cost_committed_usd(self) -> float:
        return self.cost_usd + self.reserved_cost_usd

    @property
    def tokens_remaining(self) -> int | None:
        if not self.limits.monthly_tokens:
            return None
        return max(0, self.limits.monthly_tokens - self.tokens_committed)

    @property
    def cost_remaining_usd(self) -> float | None:
        if not self.limits.monthly_cost_usd:
            return None
        return max(0.0, self.limits.monthly_cost_usd - self.cost_committed_usd)

    def over(self) -> list[dict[str, Any]]:
        """The limits this month has reached (empty when under all of them)."""
        found: list[dict[str, Any]] = []
        if self.limits.monthly_tokens and self.tokens_committed >= self.limits.monthly_tokens:
            found.append({"limit": "monthlyTokens", "limitValue": self.limits.monthly_tokens,
                          "used": self.tokens_committed})
        if self.limits.monthly_cost_usd and self.cost_committed_usd >= self.limits.monthly_cost_usd:
            found.append({"limit": "monthlyCostUsd", "limitValue": self.limits.monthly_cost_usd,
                          "used": round(self.cost_committed_usd, 6)})
        return found


def _committed(total: dict[str, Any]) -> tuple[int, float, int, float]:
    """(recorded tokens, recorded cost, reserved tokens, reserved cost) of a month's total item."""
    tokens, cost = tokens_of(total), float(total.get("estimatedCostUsd", 0))
    committed_tokens = int(total.get("committedTokens", tokens))
    committed_cost = int(total["committedCostUnits"]) / COST_UNITS_PER_USD if "committedCostUnits" in total else cost
    return tokens, cost, max(0, committed_tokens - tokens), max(0.0, committed_cost - cost)


class QuotaGuard:
    def __init__(self, store: Store, defaults: Limits) -> None:
        self.store = store
        self.records = UsageRecords(store)
        self.defaults = defaults

    def limits_for(self, owner: str) -> Limits:
        override = self.records.quota_override(owner)
        if not override:
            return self.defaults
        return Limits(
            monthly_tokens=int(override.get("monthlyTokens", self.defaults.monthly_tokens)),
            monthly_cost_usd=float(override.get("monthlyCostUsd", self.defaults.monthly_cost_usd)),
        )

    def status(self, owner: str, now: datetime | None = None, *, month: str | None = None,
               total: dict[str, Any] | None = None, limits: Limits | None = None) -> QuotaStatus:
        """The owner's limits, usage and open reservations for ``month`` (default: the month of ``now``).

        ``total`` is the month's total item when the caller has already read it."""
        moment = now or utcnow()
        month = month or month_of(moment)
        if total is None:
            total = self.records.month_total(owner, month)
        tokens, cost, reserved_tokens, reserved_cost = _committed(total)
        return QuotaStatus(month=month, limits=limits or self.limits_for(owner), tokens=tokens, cost_usd=cost,
                           resets_at=next_month_start(month_start(month)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           reserved_tokens=reserved_tokens, reserved_cost_usd=reserved_cost)

    def _exceeded(self, status: QuotaStatus, moment: datetime) -> QuotaExceeded:
        over = status.over() or [{"limit": "monthlyTokens" if status.limits.monthly_tokens else "monthlyCostUsd",
                                  "limitValue": status.limits.monthly_tokens or status.limits.monthly_cost_usd,
                                  "used": status.tokens_committed if status.limits.monthly_tokens
                                  else round(status.cost_committed_usd, 6)}]
        names = " and ".join(str(o["limit"]) for o in over)
        return QuotaExceeded(
            f"Monthly quota reached ({names}) for {status.month}; it resets at {status.resets_at}.",
            details=[{**o, "resetsAt": status.resets_at} for o in over],
            headers={"Retry-After": str(int((next_month_start(moment) - moment).total_seconds()))},
        )

    def check(self, owner: str, now: datetime | None = None) -> QuotaStatus:
        """Raise QuotaExceeded if the owner has used up (or reserved) a monthly limit; else the
        status. A read-only early answer: the billable call itself still reserves."""
        moment = now or utcnow()
        status = self.status(owner, moment)
        if status.over() and self.release_expired(owner, status.month, moment):
            status = self.status(owner, moment)
        if status.over():
            raise self._exceeded(status, moment)
        return status

    # -- reservations ---------------------------------------------------------------------------
    def reserve(self, owner: str, bound: Bound, *, operation: str, now: datetime | None = None,
                settle_within: int = SETTLE_WITHIN_SECONDS) -> Reservation | None:
        """Hold ``bound`` for one billable call, or raise QuotaExceeded (and make no call).

        Returns None for an owner without limits (nothing to hold; the usage is still counted)."""
        moment = now or utcnow()
        limits = self.limits_for(owner)
        if limits.unlimited:
            return None
        month = month_of(moment)
        reservation = Reservation(id=f"{month}.{new_ulid()}", owner=owner, tokens=max(0, bound.tokens),
                                  cost_usd=float(max(Decimal(0), bound.cost)))
        hold = Hold(month=month, attribute=reservation.attribute, tokens=reservation.tokens,
                    cost_units=reservation.cost_units, record={
                        "tokens": reservation.tokens, "costUsd": Decimal(str(reservation.cost_usd)),
                        "operation": operation, "reservedAt": iso_micros(moment),
                        "settleBy": int((moment + timedelta(seconds=settle_within)).timestamp())})
        cost_limit = Decimal(str(limits.monthly_cost_usd)) if limits.monthly_cost_usd else None
        for attempt in range(2):
            if self.records.hold(owner, hold, token_limit=limits.monthly_tokens, cost_limit_usd=cost_limit,
                                 cost_limit_units=cost_units(limits.monthly_cost_usd), now=iso_micros(moment)):
                return reservation
            if attempt or not self.release_expired(owner, month, moment):
                break
        raise self._exceeded(self.status(owner, moment, month=month, limits=limits), moment)

    def release(self, reservation: Reservation | None) -> bool:
        """Give a reservation back unused (the call failed before it used anything); False if it
        had been settled or released already."""
        return release(self.store, reservation)

    def release_expired(self, owner: str, month: str, now: datetime | None = None) -> int:
        """Release the owner's reservations of ``month`` whose ``settleBy`` has passed; how many."""
        moment = now or utcnow()
        total = self.records.month_total(owner, month)
        released = 0
        for name, held in total.items():
            if not name.startswith(RESERVATION_PREFIX) or int(held.get("settleBy", 0)) >= moment.timestamp():
                continue
            reservation_id = f"{month}.{name[len(RESERVATION_PREFIX):]}"
            if release(self.store, Reservation(id=reservation_id, owner=owner, tokens=int(held.get("tokens", 0)),
                                               cost_usd=float(held.get("costUsd", 0)))):
                released += 1
        if released:
            logger.warning("Released reservations nobody settled", extra={"count": released, "month": month})
        return released


def release(store: Store, reservation: Reservation | None) -> bool:
    """Take an open reservation back out of its month, once: False if it was settled or released
    already (the removal is conditional on the reservation still being there)."""
    if reservation is None:
        return False
    return UsageRecords(store).release(reservation.owner, reservation.month, reservation.attribute,
                                       tokens=reservation.tokens, cost_units=reservation.cost_units)


def reservation_attribute(reservation_id: str) -> str:
    """The month item's attribute that holds an open reservation: ``reservation#<ULID>``."""
    return RESERVATION_PREFIX + reservation_id.split(".", 1)[1]


def limits_from(env: Any) -> Limits:
    """The default limits from a function's environment (``parley.core.config.MeteringEnv``)."""
    return Limits(monthly_tokens=env.quota_monthly_tokens, monthly_cost_usd=env.quota_monthly_cost_usd)


def guard_from(env: Any, store: Store) -> QuotaGuard:
    return QuotaGuard(store, limits_from(env))
