"""The template's table on moto, for benchmarks that count DynamoDB requests (no benchmark here)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def emulated_table() -> Iterator[Any]:
    """The template's table (a boto3 Table resource) in a fresh moto, with fake credentials."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from local_stack.resources import provision
    from local_stack.template import Stack

    with mock_aws():
        names = provision(Stack(parameters={"Stage": "bench", "AuthMode": "device"}))
        yield boto3.resource("dynamodb", region_name="us-east-1").Table(names["Table"])
