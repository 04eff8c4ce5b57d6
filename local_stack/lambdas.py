"""Run the template's functions in this process, each with its own environment.

A function's ``app.py`` is imported (its cold start) with the environment the template gives
it, and every invocation runs with that environment in place. Invocations are serialised by a
lock, since the environment is process-wide; this is a development stack, not a load tester.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .template import ACCOUNT, REGION, FunctionSpec, Stack


@dataclass
class LambdaContext:
    """The attributes Powertools and our handlers read from the Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_seconds: int = 10
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.invoked_function_arn = self.invoked_function_arn or (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}")
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


_LOCK = threading.RLock()


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Put ``values`` into os.environ for the duration, then restore exactly what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class FunctionRunner:
    """Loads and invokes the template's functions by logical id or physical name."""

    def __init__(self, stack: Stack, *, env_overrides: Mapping[str, str] | None = None) -> None:
        self.stack = stack
        self.specs = stack.functions()
        self.by_name = {spec.name: spec for spec in self.specs.values()}
        self.env_overrides = dict(env_overrides or {})
        self.modules: dict[str, ModuleType] = {}
        self.invocations: deque[tuple[str, Any]] = deque(maxlen=200)  # the latest, for tests and debugging
        for path in stack.layer_paths():
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))

    def spec(self, function: str) -> FunctionSpec:
        if function in self.specs:
            return self.specs[function]
        name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        if name in self.by_name:
            return self.by_name[name]
        raise KeyError(f"No function {function!r} in the template")

    def env_for(self, spec: FunctionSpec) -> dict[str, str]:
        return {**spec.environment, **self.env_overrides,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory)}

    def module(self, function: str) -> ModuleType:
        spec = self.spec(function)
        if spec.logical_id not in self.modules:
            module_file, _ = spec.handler.rsplit(".", 1)
            path = spec.code_uri / f"{module_file}.py"
            name = f"parley_fn_{spec.code_uri.name}"
            loader = importlib.util.spec_from_file_location(name, path)
            if loader is None or loader.loader is None:
                raise ImportError(f"Cannot load {path}")
            module = importlib.util.module_from_spec(loader)
            with _LOCK, environment(self.env_for(spec)):
                sys.modules[name] = module
                loader.loader.exec_module(module)
            self.modules[spec.logical_id] = module
        return self.modules[spec.logical_id]

    def invoke(self, function: str, event: Any) -> Any:
        spec = self.spec(function)
        module = self.module(function)
        handler = getattr(module, spec.handler.rsplit(".", 1)[1])
        context = LambdaContext(function_name=spec.name, memory_limit_in_mb=spec.memory, timeout_seconds=spec.timeout)
        with _LOCK, environment(self.env_for(spec)):
            self.invocations.append((spec.logical_id, event))
            return handler(event, context)
