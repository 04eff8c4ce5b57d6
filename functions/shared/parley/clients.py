"""AWS clients, created lazily once per execution environment and reused.

Creating clients at import time costs cold start in functions that never use them and escapes
moto's mock in tests; these getters are cached instead. ``reset()`` drops the cache (tests).
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and transient errors.
_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=3, read_timeout=10)


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


@functools.cache
def table(name: str) -> Any:
    """A DynamoDB Table resource; its ``meta.client`` (de)serialises plain Python values."""
    return boto3.resource("dynamodb", config=_CONFIG).Table(name)


def reset() -> None:
    client.cache_clear()
    table.cache_clear()
