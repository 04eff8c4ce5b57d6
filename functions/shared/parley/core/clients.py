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


# S3 presigned URLs signed with SigV4, so the signature covers Content-Type and Content-Length.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))


@functools.cache
def client(service: str, endpoint_url: str | None = None) -> Any:
    """A client for ``service``; ``endpoint_url`` for per-API endpoints (the WebSocket callback URL)."""
    config = _S3_CONFIG if service == "s3" else _CONFIG
    return boto3.client(service, config=config, endpoint_url=endpoint_url)  # type: ignore[call-overload]


@functools.cache
def table(name: str) -> Any:
    """A DynamoDB Table resource; its ``meta.client`` (de)serialises plain Python values."""
    return boto3.resource("dynamodb", config=_CONFIG).Table(name)


@functools.cache
def model_client(service: str, *, read_timeout: float, total_attempts: int = 1) -> Any:
    """A client for a model runtime (``bedrock-runtime``) that reads at most ``read_timeout`` seconds
    and, by default, makes one attempt: the AI layer retries and falls back within the caller's
    deadline. (botocore's ``max_attempts`` counts retries, ``total_max_attempts`` every attempt.)
    Cached per argument: the AI layer asks for whole seconds, so there are few of them."""
    config = _CONFIG.merge(Config(read_timeout=read_timeout,
                                  retries={"total_max_attempts": total_attempts, "mode": "standard"}))
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def reset() -> None:
    client.cache_clear()
    model_client.cache_clear()
    table.cache_clear()
