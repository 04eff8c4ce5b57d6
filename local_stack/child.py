"""The local stack in a child process, for what drives it over loopback as a client does: the tests of
the WebSocket routes, the runnable examples of the docs and the voice-turn benchmark.

The child is ``python -m local_stack --port 0`` (what ``make run`` starts) or any code that prints the
same banner (``print_urls`` then ``READY``). The parent reads the URLs from the banner, keeps draining
the child's output (a full pipe would stop the child's logging threads), and stops it with SIGTERM
(killed if it is still there after ``stop_seconds``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
READY = "Press Ctrl-C to stop."
MAKE_RUN = ("-m", "local_stack", "--port", "0")


def print_urls(local: Any, device: str) -> None:
    """The banner's first lines: the REST API's URL, then the WebSocket's and its @connections API's."""
    print(f"Parley local stack listening on {local.url}  (AWS emulated at {local.moto_endpoint})", flush=True)
    websocket_url = getattr(local, "websocket_url", "")
    if websocket_url:
        callback = getattr(local, "websocket_callback_url", "")
        print(f"  WebSocket: {websocket_url}/?deviceId={device}  (@connections {callback})", flush=True)


@dataclass(frozen=True)
class ChildStack:
    rest: str  # the REST API's URL
    websocket: str  # the WebSocket API's URL, without path or query ("" when the child has none)
    callbacks: str  # the @connections API's URL ("" likewise)
    banner: tuple[str, ...]  # every line printed up to READY


def parse_banner(banner: Sequence[str]) -> ChildStack:
    rest = next((m[1] for m in map(re.compile(r"listening on (\S+)").search, banner) if m), None)
    if rest is None:
        raise RuntimeError("the local stack printed no URL:\n" + "\n".join(banner))
    websocket = next((m for m in map(re.compile(r"WebSocket: (ws://[^/\s]+)\S*\s+\(@connections (\S+)\)").search,
                                     banner) if m), None)
    return ChildStack(rest, websocket[1] if websocket else "", websocket[2] if websocket else "", tuple(banner))


@contextlib.contextmanager
def child_stack(*args: str, command: Sequence[str] = MAKE_RUN, env_overrides: Mapping[str, str] | None = None,
                timeout: float = 120, stop_seconds: float = 30) -> Iterator[ChildStack]:
    """``python <command> <args>`` with the machine's AWS settings removed (the child emulates AWS;
    real credentials or a real region must not reach it), until its banner is printed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(env_overrides or {})
    process = subprocess.Popen([sys.executable, *command, *args], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if not ready.is_set():
                banner.append(line.rstrip("\n"))
                if line.startswith(READY):
                    ready.set()
        ready.set()  # the child ended (before its banner, if READY was never printed)

    reader = threading.Thread(target=read, name="local-stack-output", daemon=True)
    reader.start()
    try:
        if not ready.wait(timeout) or not banner or banner[-1] != READY:
            raise RuntimeError("the local stack did not start:\n" + "\n".join(banner))
        yield parse_banner(banner)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
