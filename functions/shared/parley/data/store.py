"""Generic single-table access: paging with opaque cursors, chunked batch deletes, error mapping.

Domain modules (``parley.tutor.service`` and friends) build on this; none of them talks to botocore errors
directly. Throttling that outlasts botocore's own retries becomes ``ServiceUnavailable`` (503).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import ConditionBase, Key
from botocore.exceptions import ClientError

from parley.core.errors import BadRequest, ServiceUnavailable
from parley.core.observability import logger

THROTTLING_CODES = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
})
BATCH_WRITE_MAX = 25


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def raise_if_throttled(exc: ClientError, what: str) -> None:
    if error_code(exc) in THROTTLING_CODES:
        logger.warning("DynamoDB unavailable", extra={"operation": what, "code": error_code(exc)})
        raise ServiceUnavailable(
            "The data store is busy; nothing was changed. Retry in a moment.",
            headers={"Retry-After": "1"},
        ) from exc


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    cursor: str | None


class InvalidCursor(BadRequest):
    code = "INVALID_CURSOR"


_CURSOR_MESSAGE = "The cursor is not valid for this listing; pass the nextCursor of the previous page, unchanged."
MAX_CURSOR_VALUE = 1024


@dataclass(frozen=True)
class Listing:
    """What the cursors of one listing may hold.

    A cursor is the listing's ``scope`` and the key of the page's last item, base64url JSON. The
    scope names the listing and its filters, so a cursor is bound to the query that made it: one
    from another listing, or from the same listing with other filters (``/conversations`` and
    ``/conversations?engine=...`` page different indexes), is refused. Its key must have exactly
    the attributes of the index the listing pages, ``exact`` ones equal to this owner's values and
    ``ranges`` ones inside the listing's key range — so a cursor that decodes can only ever start
    the owner's own listing at a point of it. Anything else is a 400 ``INVALID_CURSOR``, before
    DynamoDB sees it (which would refuse a malformed ``ExclusiveStartKey`` with a 500-worthy
    ``ValidationException``).
    """

    scope: str
    exact: dict[str, str]
    ranges: dict[str, tuple[str, str]]

    @property
    def attributes(self) -> set[str]:
        return set(self.exact) | set(self.ranges)

    def encode(self, item: dict[str, Any]) -> str:
        key = {name: item[name] for name in sorted(self.attributes)}
        raw = json.dumps({"s": self.scope, "k": key}, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str | None) -> dict[str, Any] | None:
        if not cursor:
            return None
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidCursor(_CURSOR_MESSAGE, details=[{"field": "cursor", "reason": "not a cursor"}]) from exc
        if not isinstance(data, dict) or set(data) != {"s", "k"} or data["s"] != self.scope:
            raise InvalidCursor(_CURSOR_MESSAGE, details=[{"field": "cursor", "reason": "another listing's"}])
        key = data["k"]
        if not isinstance(key, dict) or set(key) != self.attributes or not all(
                isinstance(v, str) and 0 < len(v) <= MAX_CURSOR_VALUE for v in key.values()):
            raise InvalidCursor(_CURSOR_MESSAGE, details=[{"field": "cursor", "reason": "not this listing's key"}])
        if any(key[name] != value for name, value in self.exact.items()) or not all(
                low <= key[name] <= high for name, (low, high) in self.ranges.items()):
            raise InvalidCursor(_CURSOR_MESSAGE, details=[{"field": "cursor", "reason": "outside this listing"}])
        return dict(key)


class Store:
    """The application's table. ``calls`` counts DynamoDB calls by operation (benchmarks, tests)."""

    def __init__(self, table: Any, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table = table
        self.client = table.meta.client
        self.name: str = table.name
        self.calls: Counter[str] = Counter()  # DynamoDB calls by operation (benchmarks, tests)
        self._sleep = sleep

    @property
    def requests(self) -> int:
        return sum(self.calls.values())

    def _count(self, operation: str) -> None:
        self.calls[operation] += 1

    def _call(self, operation: str, call: Callable[..., Any], **kwargs: Any) -> Any:
        """One DynamoDB call, counted; throttling that outlasted botocore's retries -> 503."""
        self._count(operation)
        try:
            return call(**kwargs)
        except ClientError as exc:
            raise_if_throttled(exc, operation)
            raise

    # -- single items ------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._call("GetItem", self.table.get_item, Key={"PK": pk, "SK": sk},
                                                 ConsistentRead=True).get("Item")
        return item

    def put(self, item: dict[str, Any], **kwargs: Any) -> None:
        self._call("PutItem", self.table.put_item, Item=item, **kwargs)

    def update(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("UpdateItem", self.table.update_item, **kwargs)  # type: ignore[no-any-return]

    def update_if(self, **kwargs: Any) -> bool:
        """A conditional UpdateItem: False (nothing changed) when its ConditionExpression does not hold."""
        try:
            self.update(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def updated_if(self, **kwargs: Any) -> dict[str, Any] | None:
        """A conditional UpdateItem answering the item as it is now, or None (nothing changed) when
        its ConditionExpression does not hold."""
        try:
            result = self.update(ReturnValues="ALL_NEW", **kwargs)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return None
        return dict(result["Attributes"])

    def delete(self, pk: str, sk: str) -> None:
        self._call("DeleteItem", self.table.delete_item, Key={"PK": pk, "SK": sk})

    def transacted_if(self, items: Sequence[dict[str, Any]]) -> bool:
        """A conditional TransactWriteItems: True when it was written, False (nothing written) when
        one of its conditions did not hold."""
        try:
            self.transact(items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True

    def transact(self, items: Sequence[dict[str, Any]]) -> None:
        """TransactWriteItems with ``TableName`` filled in. Cancellations propagate as ClientError."""
        for entry in items:
            for op in entry.values():
                op.setdefault("TableName", self.name)
        self._count("TransactWriteItems")
        try:
            self.client.transact_write_items(TransactItems=list(items))
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if any(r in THROTTLING_CODES or r == "TransactionConflict" for r in reasons):
                    raise_if_throttled(ClientError({"Error": {"Code": "ThrottlingException"}}, "Transact"), "Transact")
            raise_if_throttled(exc, "TransactWriteItems")
            raise

    # -- queries -----------------------------------------------------------------------------
    def query_page(self, *, key: ConditionBase, limit: int, listing: Listing | None = None, cursor: str | None = None,
                   forward: bool = True, index: str | None = None, **kwargs: Any) -> Page:
        """One page of ``limit`` items, and the cursor of the next page — None when there is none,
        also when this page is exactly the last ``limit`` items (one item more is read to know).
        ``cursor`` must be one ``listing`` made (``INVALID_CURSOR`` otherwise). No FilterExpression:
        DynamoDB filters after ``Limit``, so a page could not tell whether more items follow."""
        if "FilterExpression" in kwargs:
            raise ValueError("query_page pages by Limit; a FilterExpression would end a listing early")
        args: dict[str, Any] = {"KeyConditionExpression": key, "Limit": limit + 1, "ScanIndexForward": forward,
                                **kwargs}
        start = listing.decode(cursor) if listing is not None else None
        if start:
            args["ExclusiveStartKey"] = start
        if index:
            args["IndexName"] = index
        result = self._call("Query", self.table.query, **args)
        items = result.get("Items", [])
        more = len(items) > limit
        items = items[:limit]
        return Page(items=items, cursor=listing.encode(items[-1]) if more and listing is not None and items else None)

    def query_all(self, *, key: ConditionBase, index: str | None = None, forward: bool = True,
                  **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item matching ``key``, following DynamoDB's 1 MB pages."""
        args: dict[str, Any] = {"KeyConditionExpression": key, "ScanIndexForward": forward, **kwargs}
        if index:
            args["IndexName"] = index
        elif "ConsistentRead" not in args:
            args["ConsistentRead"] = True
        while True:
            result = self._call("Query", self.table.query, **args)
            yield from result.get("Items", [])
            if "LastEvaluatedKey" not in result:
                return
            args["ExclusiveStartKey"] = result["LastEvaluatedKey"]

    def keys_with_prefix(self, pk: str, sk_prefix: str) -> Iterator[dict[str, str]]:
        for item in self.query_all(key=Key("PK").eq(pk) & Key("SK").begins_with(sk_prefix),
                                   ProjectionExpression="PK, SK"):
            yield {"PK": item["PK"], "SK": item["SK"]}

    # -- batch deletes -----------------------------------------------------------------------
    def delete_keys(self, keys: Sequence[dict[str, str]], *, max_attempts: int = 6) -> int:
        """Delete in BatchWriteItem chunks of 25, retrying unprocessed items with backoff.

        Returns the number of items deleted; raises ServiceUnavailable if some are still
        unprocessed after ``max_attempts`` (the caller's retry finishes the job: deletes are
        idempotent).
        """
        for start in range(0, len(keys), BATCH_WRITE_MAX):
            pending: list[dict[str, Any]] = [{"DeleteRequest": {"Key": k}} for k in keys[start:start + BATCH_WRITE_MAX]]
            attempt = 0
            while pending:
                result = self._call("BatchWriteItem", self.client.batch_write_item, RequestItems={self.name: pending})
                pending = result.get("UnprocessedItems", {}).get(self.name, [])
                if pending:
                    attempt += 1
                    if attempt >= max_attempts:
                        raise ServiceUnavailable(
                            "The data store is busy; part of the delete is pending. Retry the request.",
                            headers={"Retry-After": "1"},
                        )
                    self._sleep(min(0.05 * 2 ** attempt, 1.0))
        return len(keys)


class Repository:
    """An aggregate's reads and writes over the ``Store`` (``parley.data.sessions`` and friends)."""

    def __init__(self, store: Store) -> None:
        self.store = store
