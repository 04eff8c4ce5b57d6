"""Generic single-table access: paging with opaque cursors, chunked batch deletes, error mapping.

Domain modules (``parley.tutor`` and friends) build on this; none of them talks to botocore errors
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

from .errors import BadRequest, ServiceUnavailable
from .observability import logger

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


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, owner: str) -> dict[str, Any] | None:
    """Decode a cursor made by ``encode_cursor``; refuse one that points outside the owner."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("The cursor is not valid; use the nextCursor of a previous page.") from exc
    if not isinstance(key, dict) or key.get("PK") != owner or not all(isinstance(v, str) for v in key.values()):
        raise BadRequest("The cursor is not valid; use the nextCursor of a previous page.")
    return key


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

    # -- single items ------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        self._count("GetItem")
        try:
            return self.table.get_item(Key={"PK": pk, "SK": sk}, ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise_if_throttled(exc, "GetItem")
            raise

    def put(self, item: dict[str, Any], **kwargs: Any) -> None:
        self._count("PutItem")
        try:
            self.table.put_item(Item=item, **kwargs)
        except ClientError as exc:
            raise_if_throttled(exc, "PutItem")
            raise

    def update(self, **kwargs: Any) -> dict[str, Any]:
        self._count("UpdateItem")
        try:
            return self.table.update_item(**kwargs)  # type: ignore[no-any-return]
        except ClientError as exc:
            raise_if_throttled(exc, "UpdateItem")
            raise

    def delete(self, pk: str, sk: str) -> None:
        self._count("DeleteItem")
        try:
            self.table.delete_item(Key={"PK": pk, "SK": sk})
        except ClientError as exc:
            raise_if_throttled(exc, "DeleteItem")
            raise

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
    def query_page(self, *, key: ConditionBase, limit: int, cursor: dict[str, Any] | None,
                   forward: bool = True, index: str | None = None, **kwargs: Any) -> Page:
        args: dict[str, Any] = {"KeyConditionExpression": key, "Limit": limit, "ScanIndexForward": forward, **kwargs}
        if cursor:
            args["ExclusiveStartKey"] = cursor
        if index:
            args["IndexName"] = index
        self._count("Query")
        try:
            result = self.table.query(**args)
        except ClientError as exc:
            raise_if_throttled(exc, "Query")
            raise
        return Page(items=result.get("Items", []), cursor=encode_cursor(result.get("LastEvaluatedKey")))

    def query_all(self, *, key: ConditionBase, index: str | None = None, forward: bool = True,
                  **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item matching ``key``, following DynamoDB's 1 MB pages."""
        args: dict[str, Any] = {"KeyConditionExpression": key, "ScanIndexForward": forward, **kwargs}
        if index:
            args["IndexName"] = index
        elif "ConsistentRead" not in args:
            args["ConsistentRead"] = True
        while True:
            self._count("Query")
            try:
                result = self.table.query(**args)
            except ClientError as exc:
                raise_if_throttled(exc, "Query")
                raise
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
                self._count("BatchWriteItem")
                try:
                    result = self.client.batch_write_item(RequestItems={self.name: pending})
                except ClientError as exc:
                    raise_if_throttled(exc, "BatchWriteItem")
                    raise
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
