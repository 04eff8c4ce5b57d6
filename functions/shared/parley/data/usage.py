"""The usage aggregate: an owner's monthly and daily totals, the markers of counted events, the
quota override, and the rate-limit windows.

    monthly total   PK=<owner>  SK=USAGE#MONTH#<YYYY-MM>            type=USAGE_MONTH
                    (the units, committedTokens/committedCostUnits, open reservations reservation#<ULID>)
    daily total     PK=<owner>  SK=USAGE#DAY#<YYYY-MM-DD>#<engine>  type=USAGE_DAY
    event marker    PK=<owner>  SK=USAGE#EVENT#<eventId>            type=USAGE_EVENT (expires)
    quota override  PK=<owner>  SK=QUOTA                            (monthlyTokens, monthlyCostUsd)
    rate window     PK=<owner>  SK=RATE#<what>#<window start>       (requests; expires)

(Exact keys: ``parley.data.keys``.) What the units mean, and when a reservation is taken and
settled, is the domain's (``parley.usage.ledger``, ``parley.usage.quota``); this module only
writes them, atomically and conditionally.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from parley.data import keys
from parley.data.store import Repository, error_code

EventOutcome = Literal["recorded", "duplicate", "reservation gone"]


@dataclass(frozen=True)
class Settlement:
    """The open reservation an event settles: its month, its attribute on that month's total, and
    the amounts it holds."""

    month: str
    attribute: str
    tokens: Decimal
    cost_units: int


@dataclass(frozen=True)
class Hold:
    """A reservation to take: its attribute, its amounts and the record kept under the attribute."""

    month: str
    attribute: str
    tokens: int
    cost_units: int
    record: dict[str, Any]


def _failed(exc: ClientError, index: int) -> bool:
    """Whether the transaction's operation ``index`` failed its condition."""
    reasons = exc.response.get("CancellationReasons") or []
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"


class UsageRecords(Repository):
    # -- reading ------------------------------------------------------------------------------
    def month_total(self, owner: str, month: str) -> dict[str, Any]:
        return self.store.get(owner, keys.usage_month_sk(month)) or {}

    def days(self, owner: str, month: str) -> list[dict[str, Any]]:
        return list(self.store.query_all(
            key=Key("PK").eq(owner) & Key("SK").begins_with(keys.usage_days_prefix(month))))

    def quota_override(self, owner: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.QUOTA_SK)

    # -- counting an event --------------------------------------------------------------------
    def add_event(self, owner: str, marker: dict[str, Any], units: dict[str, Decimal], *, month: str, day: str,
                  engine: str, now: str, committed_tokens: Decimal, committed_cost_units: int,
                  settle: Settlement | None) -> EventOutcome:
        """ONE transaction: the event's ``marker`` (unless it exists: "duplicate"), every unit ADDed to
        the month's and the day's totals, ``committed*`` moved on and, with ``settle``, the reservation
        taken back out — conditional on it still being there ("reservation gone" when not)."""
        names = {f"#{name}": name for name in units}
        values = {f":{name}": value for name, value in units.items()}
        adds = ", ".join(f"#{name} :{name}" for name in units)
        month_update: dict[str, Any] = {
            "Key": {"PK": owner, "SK": keys.usage_month_sk(month)},
            "UpdateExpression": f"SET #type = :monthType, #month = :month, updatedAt = :now ADD {adds}, "
                                "committedTokens :committedTokens, committedCostUnits :committedCost",
            "ExpressionAttributeNames": {**names, "#type": "type", "#month": "month"},
            "ExpressionAttributeValues": {**values, ":monthType": "USAGE_MONTH", ":month": month, ":now": now},
        }
        operations: list[dict[str, Any]] = [
            {"Put": {"Item": marker, "ConditionExpression": "attribute_not_exists(SK)"}},
            {"Update": month_update},
            {"Update": {
                "Key": {"PK": owner, "SK": keys.usage_day_sk(day, engine)},
                "UpdateExpression": f"SET #type = :dayType, #date = :day, #engine = :engine, updatedAt = :now "
                                    f"ADD {adds}",
                "ExpressionAttributeNames": {**names, "#type": "type", "#date": "date", "#engine": "engine"},
                "ExpressionAttributeValues": {**values, ":dayType": "USAGE_DAY", ":day": day, ":engine": engine,
                                              ":now": now},
            }},
        ]
        if settle is not None:
            if settle.month == month:
                committed_tokens -= settle.tokens
                committed_cost_units -= settle.cost_units
                month_update["UpdateExpression"] = month_update["UpdateExpression"].replace(
                    " ADD ", " REMOVE #reservation ADD ", 1)
                month_update["ConditionExpression"] = "attribute_exists(#reservation)"
                month_update["ExpressionAttributeNames"]["#reservation"] = settle.attribute
            else:  # reserved at the end of one month, used at the start of the next
                operations.append({"Update": {
                    "Key": {"PK": owner, "SK": keys.usage_month_sk(settle.month)},
                    "UpdateExpression": "REMOVE #reservation ADD committedTokens :rt, committedCostUnits :rc",
                    "ConditionExpression": "attribute_exists(#reservation)",
                    "ExpressionAttributeNames": {"#reservation": settle.attribute},
                    "ExpressionAttributeValues": {":rt": -settle.tokens, ":rc": -settle.cost_units},
                }})
        month_update["ExpressionAttributeValues"].update({":committedTokens": committed_tokens,
                                                          ":committedCost": committed_cost_units})
        try:
            self.store.transact(operations)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            if _failed(exc, 0):
                return "duplicate"
            if settle is not None and any(_failed(exc, i) for i in range(1, 4)):
                return "reservation gone"
            raise
        return "recorded"

    # -- reservations ---------------------------------------------------------------------------
    def hold(self, owner: str, hold: Hold, *, token_limit: int, cost_limit_usd: Decimal | None,
             cost_limit_units: int, now: str) -> bool:
        """Add ``hold`` to the month's committed amounts, if they (and the recorded ones) are under
        the limits (``token_limit`` 0 and ``cost_limit_usd`` None: no limit); False when not."""
        conditions: list[str] = []
        values: dict[str, Any] = {":t": hold.tokens, ":c": hold.cost_units, ":monthType": "USAGE_MONTH",
                                  ":month": hold.month, ":now": now, ":r": hold.record}
        if token_limit:
            values[":tl"] = token_limit
            conditions += ["(attribute_not_exists(committedTokens) OR committedTokens < :tl)",
                           "(attribute_not_exists(totalTokens) OR totalTokens < :tl)"]
        if cost_limit_usd is not None:
            values[":cl"] = cost_limit_usd
            values[":clu"] = cost_limit_units
            conditions += ["(attribute_not_exists(committedCostUnits) OR committedCostUnits < :clu)",
                           "(attribute_not_exists(estimatedCostUsd) OR estimatedCostUsd < :cl)"]
        return self.store.update_if(
            Key={"PK": owner, "SK": keys.usage_month_sk(hold.month)},
            UpdateExpression="SET #type = if_not_exists(#type, :monthType), #month = if_not_exists(#month, :month), "
                             "updatedAt = :now, #r = :r ADD committedTokens :t, committedCostUnits :c",
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames={"#type": "type", "#month": "month", "#r": hold.attribute},
            ExpressionAttributeValues=values)

    def release(self, owner: str, month: str, attribute: str, *, tokens: int, cost_units: int) -> bool:
        """Take an open reservation back out of its month, once: False if it was settled or
        released already."""
        return self.store.update_if(
            Key={"PK": owner, "SK": keys.usage_month_sk(month)},
            UpdateExpression="REMOVE #r ADD committedTokens :rt, committedCostUnits :rc",
            ConditionExpression="attribute_exists(#r)",
            ExpressionAttributeNames={"#r": attribute},
            ExpressionAttributeValues={":rt": -tokens, ":rc": -cost_units})

    # -- rate windows ---------------------------------------------------------------------------
    def count_request(self, owner: str, what: str, window_start: int, *, expires: int) -> int:
        """Count one request in the window; how many the window holds now."""
        result = self.store.update(
            Key={"PK": owner, "SK": keys.rate_window_sk(what, window_start)},
            UpdateExpression="ADD #n :one SET expiresAt = if_not_exists(expiresAt, :expires)",
            ExpressionAttributeNames={"#n": "requests"},
            ExpressionAttributeValues={":one": 1, ":expires": expires},
            ReturnValues="UPDATED_NEW")
        return int(result["Attributes"]["requests"])
