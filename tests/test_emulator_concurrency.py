"""The emulated AWS under concurrency (local_stack.concurrency): moto's DynamoDB walks a table's dict
of items for a scan while another request adds a key - "dictionary changed size during iteration",
a 500 that `make fuzz` logged from the local stack. Serialised, concurrent writes and scans never
collide. (Without ``serialised_backends`` this test fails on almost every run: the thread switch
interval is made tiny so that the race shows within a second.)"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from moto.dynamodb.models import dynamodb_backends

from local_stack.concurrency import serialised_backends

ROUNDS = 5


@pytest.fixture
def fast_thread_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _round(table: str, prefix: str) -> list[str]:
    backend = dynamodb_backends["123456789012"]["us-east-1"]
    errors: list[str] = []
    writing = threading.Event()

    def write(n: int) -> None:
        for i in range(400):
            try:
                backend.put_item(table, {"PK": {"S": f"{prefix}{n}-{i}"}, "SK": {"S": "x"}})
            except Exception as exc:
                errors.append(repr(exc))

    def scan() -> None:
        while not writing.is_set():
            try:
                backend.scan(table, {}, None, None, None, {}, {}, None, False, None, (None, None))
            except Exception as exc:
                errors.append(repr(exc))

    readers = [threading.Thread(target=scan) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    writing.set()
    for thread in readers:
        thread.join(timeout=60)
    return errors


def test_concurrent_writes_and_scans_never_collide(aws: dict[str, str], fast_thread_switches: None) -> None:
    boto3.client("dynamodb").create_table(
        TableName="race", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                              {"AttributeName": "SK", "AttributeType": "S"}])
    with serialised_backends():
        errors = [e for n in range(ROUNDS) for e in _round("race", f"R{n}-")]
    assert errors == []
    assert boto3.client("dynamodb").describe_table(TableName="race")["Table"]["ItemCount"] in (0, ROUNDS * 800)


def test_reading_all_of_os_environ_survives_a_function_environment_ending_meanwhile() -> None:
    """local_stack.lambdas puts a function's variables into os.environ and removes them when its
    invocation ends; a thread listing the environment meanwhile (botocore and requests read the proxy
    variables with ``os.environ.items()``) must not find a listed key gone (KeyError)."""
    import os

    from local_stack import lambdas

    assert type(os.environ).__name__ == "_SnapshotEnviron"
    with lambdas.environment({"PARLEY_RACE_PROBE": "1"}):
        listing = iter(os.environ.items())
        first = next(listing)  # the reader has started ...
    rest = list(listing)  # ... and the invocation ended before it read on
    assert ("PARLEY_RACE_PROBE", "1") in [first, *rest]
    assert "PARLEY_RACE_PROBE" not in os.environ
