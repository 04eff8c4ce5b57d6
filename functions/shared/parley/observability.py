"""The one place that creates the Powertools logger, tracer and metrics.

Service name, namespace and log level come from the ``POWERTOOLS_*`` variables set in the
template's Globals, so every function logs and measures under the same names.

X-Ray patches botocore only (every AWS call, boto3's included), not every library it supports:
``patch_all`` imports each supported library that is installed (httpx, requests, sqlite3, ...) at
cold start just to patch it, and Parley makes no traced calls through any of them. (The Anthropic
SDK 2.x sends its requests through ``httpx2``, which the X-Ray SDK does not patch either way.)

The tracer is created when a module first imports it (``from parley.observability import tracer``,
at a handler's module level, so still during the init phase): a function that records no
subsegments — the authorizers — never loads the X-Ray SDK, nor botocore through its patch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    tracer: Tracer

TRACED_MODULES = ("boto3",)

logger = Logger()
metrics = Metrics()


def __getattr__(name: str) -> Any:
    if name == "tracer":
        from aws_lambda_powertools import Tracer

        created = Tracer(patch_modules=TRACED_MODULES)
        globals()["tracer"] = created  # later imports find the attribute and skip this hook
        return created
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["logger", "metrics", "tracer"]
