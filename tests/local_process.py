"""``make run`` in a process of its own, for the tests that drive the local stack as a client would
(over loopback, with a standard WebSocket client)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RunningStack:
    rest: str  # the REST API's URL
    ws: str  # the WebSocket API's URL
    callbacks: str  # the @connections API's URL


def running_stack(idle_seconds: str | None = None) -> Iterator[RunningStack]:
    """The stack, started and stopped around a ``yield`` (use as a fixture's body), with API Gateway's
    idle timeout (10 minutes) unless a test shortens it: a 3 s idle timeout would also cut a stream
    whose first frame is slow on a loaded machine, so only the idle test's own stack has it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PARLEY_WS_PORT=str(port))
    if idle_seconds is not None:
        env.update(PARLEY_WS_IDLE_SECONDS=idle_seconds)
    proc = subprocess.Popen([sys.executable, "-m", "local_stack", "--port", "0", "--no-web"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    rest = callbacks = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            rest = line.split("listening on", 1)[1].split()[0]
        if "@connections" in line:
            callbacks = line.rsplit(" ", 1)[-1].strip().rstrip(")")
        if "Ctrl-C" in line or not line:
            break
    assert rest.startswith("http://127.0.0.1:"), "the local stack did not start"
    assert callbacks.startswith("http://127.0.0.1:"), "the local stack did not print its @connections URL"
    yield RunningStack(rest, f"ws://127.0.0.1:{port}", callbacks)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
