"""Warm overhead of a simple route: GET /settings through its real handler vs a bare resolver.

Both run in this process on the same API Gateway event, many times, after a warm-up; DynamoDB is
replaced by an in-memory stand-in answering GetItem at once, so what is measured is our code
(authorizer context, validation, models, error mapping, logging decorators), not the network.
The baseline is a bare Powertools resolver whose route returns a constant, measured in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.registry import benchmark

EVENT = json.loads((Path(__file__).resolve().parent.parent / "events" / "settings.json").read_text(encoding="utf-8"))
EVENT = {**EVENT, "httpMethod": "GET", "body": None}
CALLS = 2000


class _Table:
    """Enough of a boto3 Table for the Store: an instant GetItem."""

    name = "bench"

    class meta:  # noqa: N801 - mirrors boto3's attribute
        client = None

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": {"PK": "DEVICE#sample-device-0001", "SK": "SETTINGS", "updatedAt": "2026-11-22T00:00:00Z",
                         "settings": {"accent": "UK", "gender": "male", "level": "advanced", "topic": "travel"}}}


def _per_call(fn: Any, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def measure(runs: int) -> tuple[float, float]:
    """(median seconds per call of the settings handler, of the bare resolver)."""
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": "WARNING"})
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from local_stack.lambdas import FunctionRunner, LambdaContext
    from local_stack.template import Stack
    from parley.core import clients

    runner = FunctionRunner(Stack(parameters={"Stage": "bench", "AuthMode": "device"}),
                            env_overrides={"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    module = runner.module("SettingsFunction")
    clients.table.cache_clear()
    original = clients.table
    module.clients.table = lambda _name: _Table()  # type: ignore[attr-defined]
    bare = APIGatewayRestResolver()
    bare.get("/settings")(lambda: {"accent": "UK"})
    context = LambdaContext(function_name="bench-settings")
    real = lambda: module.handler(dict(EVENT), context)  # noqa: E731
    baseline = lambda: bare.resolve(dict(EVENT), context)  # noqa: E731
    assert real()["statusCode"] == 200 and baseline()["statusCode"] == 200
    ours, base = [], []
    try:
        for _ in range(runs):  # interleaved
            ours.append(_per_call(real, CALLS))
            base.append(_per_call(baseline, CALLS))
    finally:
        module.clients.table = original  # type: ignore[attr-defined]
    return statistics.median(ours), statistics.median(base)


@benchmark("settings-warm", "warm GET /settings handler vs a bare Powertools resolver returning a constant")
def settings_warm(runs: int) -> None:
    ours, base = measure(runs)
    print(f"  {'handler':<40} {'us/call':>9} {'vs bare':>8}")
    print(f"  {'bare resolver (constant)':<40} {base * 1e6:>9.1f} {1.0:>7.2f}x")
    print(f"  {'GET /settings (stubbed DynamoDB)':<40} {ours * 1e6:>9.1f} {ours / base:>7.2f}x")
    print(f"  target: <= 1.5x -> {'met' if ours <= 1.5 * base else f'MISSED by {ours / base / 1.5:.2f}x'}")
