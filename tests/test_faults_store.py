"""DynamoDB faults: throttling outlasting the SDK's retries is a 503, and nothing is half-written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import botocore.client
import pytest
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from tests.conftest import ApiClient, assert_error

_ORIGINAL = botocore.client.BaseClient._make_api_call


class Faults:
    """Make chosen DynamoDB operations fail (every time, or the first N times)."""

    def __init__(self) -> None:
        self.rules: dict[str, tuple[Callable[[dict[str, Any]], Any], int | None]] = {}
        self.calls: list[str] = []

    def fail(self, operation: str, code: str = "ProvisionedThroughputExceededException", times: int | None = None
             ) -> None:
        def raise_error(_params: dict[str, Any]) -> Any:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

        self.rules[operation] = (raise_error, times)

    def answer(self, operation: str, respond: Callable[[dict[str, Any]], Any], times: int | None = None) -> None:
        self.rules[operation] = (respond, times)

    def clear(self) -> None:
        self.rules.clear()


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    injected = Faults()

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        injected.calls.append(operation)
        rule = injected.rules.get(operation)
        if rule and client.meta.service_model.service_name == "dynamodb":
            respond, times = rule
            if times is None or times > 0:
                if times is not None:
                    injected.rules[operation] = (respond, times - 1)
                return respond(params)
        return _ORIGINAL(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    return injected


def _items(aws: dict[str, str], owner: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(aws["Table"])
    return table.query(KeyConditionExpression=Key("PK").eq(owner))["Items"]


def test_throttled_message_save_is_503_and_writes_nothing(api: ApiClient, faults: Faults, aws: dict[str, str]
                                                          ) -> None:
    sid = api.post("/sessions", {}).json()["sessionId"]
    before = _items(aws, f"DEVICE#{api.device_id}")
    faults.fail("TransactWriteItems")
    response = api.post(f"/sessions/{sid}/messages", {"role": "user", "content": "are you there"})
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "nothing was changed" in error["message"].lower() or "retry" in error["message"].lower()
    assert response.headers.get("Retry-After") == "1"
    faults.clear()
    assert _items(aws, f"DEVICE#{api.device_id}") == before
    detail = api.get(f"/sessions/{sid}").json()
    assert detail["turnCount"] == 0 and detail["messages"] == []


def test_throttled_settings_read_is_503(api: ApiClient, faults: Faults) -> None:
    faults.fail("GetItem", code="ThrottlingException")
    assert_error(api.get("/settings"), 503, "SERVICE_UNAVAILABLE")


def test_a_transaction_cancelled_by_throttling_is_503_not_a_conflict(api: ApiClient, faults: Faults) -> None:
    sid = api.post("/sessions", {}).json()["sessionId"]

    def cancelled(_params: dict[str, Any]) -> Any:
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "throttled"},
                           "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}]},
                          "TransactWriteItems")

    faults.answer("TransactWriteItems", cancelled)
    assert_error(api.post(f"/sessions/{sid}/messages", {"role": "user", "content": "hello"}), 503,
                 "SERVICE_UNAVAILABLE")


def test_delete_with_unprocessed_items_is_503_then_a_retry_finishes(api: ApiClient, faults: Faults,
                                                                    aws: dict[str, str]) -> None:
    sid = api.post("/sessions", {}).json()["sessionId"]
    for n in range(30):
        api.post(f"/sessions/{sid}/messages", {"role": "user", "content": f"message {n}"})

    def nothing_processed(params: dict[str, Any]) -> Any:
        return {"UnprocessedItems": params["RequestItems"]}

    faults.answer("BatchWriteItem", nothing_processed)
    assert_error(api.delete(f"/sessions/{sid}"), 503, "SERVICE_UNAVAILABLE")
    assert api.get(f"/sessions/{sid}").status == 200  # the session is still there to retry on
    faults.clear()
    assert api.delete(f"/sessions/{sid}").status == 204
    assert _items(aws, f"DEVICE#{api.device_id}") == []


def test_delete_retries_unprocessed_items_until_done(api: ApiClient, faults: Faults, aws: dict[str, str]) -> None:
    sid = api.post("/sessions", {}).json()["sessionId"]
    for n in range(40):
        api.post(f"/sessions/{sid}/messages", {"role": "user", "content": f"message {n}"})
    real = _ORIGINAL

    def half_processed(params: dict[str, Any]) -> Any:
        requests = params["RequestItems"]
        (table, writes), = requests.items()
        keep, later = writes[: len(writes) // 2 or 1], writes[len(writes) // 2 or 1:]
        client = boto3.resource("dynamodb").meta.client  # takes plain values, like the Store
        real(client, "BatchWriteItem", {"RequestItems": {table: keep}})
        return {"UnprocessedItems": {table: later} if later else {}}

    faults.answer("BatchWriteItem", half_processed, times=3)
    assert api.delete(f"/sessions/{sid}").status == 204
    assert _items(aws, f"DEVICE#{api.device_id}") == []
    assert faults.calls.count("BatchWriteItem") >= 3
