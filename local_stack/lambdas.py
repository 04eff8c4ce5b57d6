"""Run the template's functions in this process, each with its own environment.

A function's ``app.py`` is imported (its cold start) with the environment the template gives
it, and every invocation runs with that environment in place. Invocations are serialised by a
lock, since the environment is process-wide; this is a development stack, not a load tester.

A handler that waits for other functions (the chat function's action envelope waits for the
transcription and analysis workflows, whose tasks are functions too) must let them run meanwhile,
as separate Lambda environments would: a module-level ``PAUSE`` of a function's module is replaced
by ``pause``, which gives up the lock while it sleeps and takes it back with the environment of
the invocation that paused. ``released()`` does the same around any block.

A handler's own ``lambda:Invoke`` of a template function is routed here too (``direct_invocations``):
a synchronous one runs in the caller's thread, an asynchronous one (``InvocationType=Event``) in a
thread of its own once the caller's turn ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
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
_TURN = threading.local()  # .stack: the environments of this thread's invocations in progress, one per lock hold


@contextlib.contextmanager
def _turn(values: Mapping[str, str]) -> Iterator[None]:
    """Hold the lock and ``values`` in os.environ for one invocation (nested ones stack up)."""
    with _LOCK, environment(values):
        stack = getattr(_TURN, "stack", [])
        _TURN.stack = [*stack, dict(values)]
        try:
            yield
        finally:
            _TURN.stack = stack


@contextlib.contextmanager
def released() -> Iterator[None]:
    """Give up this thread's turn for the duration of the block, then take it back (and put this
    invocation's environment back, whatever ran meanwhile)."""
    stack = list(getattr(_TURN, "stack", []))
    for _ in stack:
        _LOCK.release()
    try:
        yield
    finally:
        for _ in stack:
            _LOCK.acquire()
        if stack:
            os.environ.update(stack[-1])


def pause(seconds: float) -> None:
    """``time.sleep`` for a handler that waits on other functions: they run while it sleeps."""
    with released():
        time.sleep(seconds)


class _SnapshotEnviron(os._Environ):  # type: ignore[name-defined,misc]  # os.environ's own class
    """``os.environ`` whose whole-mapping reads (``items()``, ``values()``, ``copy()``) read one
    atomic snapshot. ``environment`` removes a function's variables again when its invocation
    ends, under the lock; a thread that does not hold it (a test's boto3 client reading proxy
    variables with ``os.environ.items()``) would otherwise list a key, find it gone a moment later
    and fail with a KeyError (``os._Environ`` lists the keys, then reads each)."""

    def _snapshot(self) -> dict[str, str]:
        data = self.__dict__["_data"].copy()  # one C-level dict copy: atomic under the GIL
        return {self.decodekey(k): self.decodevalue(v) for k, v in data.items()}

    def items(self) -> Any:
        return self._snapshot().items()

    def values(self) -> Any:
        return self._snapshot().values()

    def copy(self) -> dict[str, str]:
        return self._snapshot()


if type(os.environ) is os._Environ:  # type: ignore[attr-defined]
    os.environ.__class__ = _SnapshotEnviron


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
            if hasattr(module, "PAUSE"):  # see the module docstring
                setattr(module, "PAUSE", pause)  # noqa: B010 - a module attribute mypy cannot see
            self.modules[spec.logical_id] = module
        return self.modules[spec.logical_id]

    def invoke(self, function: str, event: Any) -> Any:
        spec = self.spec(function)
        module = self.module(function)
        handler = getattr(module, spec.handler.rsplit(".", 1)[1])
        context = LambdaContext(function_name=spec.name, memory_limit_in_mb=spec.memory, timeout_seconds=spec.timeout)
        with _turn(self.env_for(spec)):
            self.invocations.append((spec.logical_id, event))
            return handler(event, context)


# -- one function invoking another ----------------------------------------------------------------
AsyncRunner = Callable[[Callable[[], Any]], None]


def in_a_thread(invocation: Callable[[], Any]) -> None:
    """Lambda's asynchronous invocation here: the function runs in its own thread, after the caller's
    turn (the lock) is free, as a separate execution environment would. Its failure is logged, as
    Lambda would log it; nobody waits for it."""
    def run() -> None:
        try:
            invocation()
        except Exception:  # Lambda reports an async invocation's error in the function's log only
            import logging

            logging.getLogger("local_stack").exception("Asynchronous invocation failed")

    threading.Thread(target=run, name="parley-async-invoke", daemon=True).start()


def direct_invocations(runner: FunctionRunner, *, run_async: AsyncRunner = in_a_thread) -> Callable[[], None]:
    """Run a ``lambda:Invoke`` of one of the template's functions, made by a handler, right here.

    Synchronous (``RequestResponse``): in the calling thread (the chat function's ``get_transcribe_url``
    invokes the stream-URL function). Through moto server it would run in the server's thread and wait
    for the caller's turn, which the caller holds while it waits for the answer.
    Asynchronous (``Event``, the WebSocket message function starting its answer): handed to
    ``run_async`` (a thread by default; tests pass a queue they drain) and answered 202 at once, as
    Lambda does. Returns the undo."""
    import io
    from urllib.parse import unquote

    import boto3
    from botocore.awsrequest import AWSResponse, HTTPHeaders
    from botocore.response import StreamingBody

    def before_call(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        headers = params.get("headers") or {}
        kind = headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind not in ("RequestResponse", "Event"):
            return None
        name = unquote(str(params.get("url_path", "")).split("/functions/", 1)[-1].split("/", 1)[0])
        if name not in runner.by_name and name not in runner.specs:
            return None
        body = params.get("body") or b"{}"
        event = json.loads(body)
        if kind == "Event":
            run_async(lambda: runner.invoke(name, event))
            empty = StreamingBody(io.BytesIO(b""), 0)
            return AWSResponse(str(params.get("url_path", "")), 202, HTTPHeaders(), None), {
                "StatusCode": 202, "Payload": empty}
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        try:
            payload = json.dumps(runner.invoke(name, event)).encode()
        except Exception as exc:  # what Lambda answers for a handler's unhandled exception
            parsed["FunctionError"] = "Unhandled"
            payload = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        parsed["Payload"] = StreamingBody(io.BytesIO(payload), len(payload))
        return AWSResponse(str(params.get("url_path", "")), 200, HTTPHeaders(), None), parsed

    events = boto3._get_default_session().events  # the session every handler's client comes from
    hook: Callable[..., Any] = before_call  # a before-call hook may answer instead of the service
    events.register("before-call.lambda.Invoke", hook)
    return lambda: events.unregister("before-call.lambda.Invoke", hook)


def attach(local: Any) -> None:
    """The local stack's hook (see ``local_stack.server``)."""
    local.on_stop(direct_invocations(local.runner))
