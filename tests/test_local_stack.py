"""`make run` for real: the local stack in its own process, driven over HTTP on loopback."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEVICE = {"X-Device-Id": "local-test-device-01", "Content-Type": "application/json"}


class _Lines:
    """The process's output, line by line, read by a thread so waiting can have a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.queue.put(line)
        self.queue.put("")

    def until(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(line)
            if text in line or not line:
                return line


@pytest.fixture(scope="module")
def local_url() -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen([sys.executable, "-m", "local_stack", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = _Lines(proc)
    first = lines.until("listening on")
    assert "listening on http://127.0.0.1:" in first, lines.seen
    url = first.split("listening on ", 1)[1].split()[0]
    assert "Ctrl-C" in lines.until("Ctrl-C"), lines.seen
    assert any("curl" in line for line in lines.seen), lines.seen
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, lines.seen
    assert "Stopped." in lines.until("Stopped."), lines.seen


def call(url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers or DEVICE)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers), json.loads(raw) if raw else None


def test_the_local_stack_serves_the_tutor_api_over_http(local_url: str) -> None:
    status, _, settings = call(local_url, "PUT", "/settings", {"accent": "AU", "topic": "travel"})
    assert status == 200 and settings["accent"] == "AU"

    status, _, session = call(local_url, "POST", "/sessions", {})
    assert status == 201 and session["accent"] == "AU" and session["topic"] == "travel"
    sid = session["sessionId"]

    status, _, _ = call(local_url, "POST", f"/sessions/{sid}/messages", {"role": "user", "content": "G'day mate"})
    assert status == 201
    status, _, detail = call(local_url, "GET", f"/sessions/{sid}")
    assert status == 200 and [m["content"] for m in detail["messages"]] == ["G'day mate"]

    status, _, page = call(local_url, "GET", "/sessions?limit=5")
    assert status == 200 and page["items"][0]["sessionId"] == sid

    status, _, _ = call(local_url, "DELETE", f"/sessions/{sid}")
    assert status == 204
    status, _, error = call(local_url, "GET", f"/sessions/{sid}")
    assert status == 404 and error["error"]["code"] == "NOT_FOUND"


def test_the_local_stack_requires_a_device_id(local_url: str) -> None:
    status, _, error = call(local_url, "GET", "/settings", headers={"Content-Type": "application/json"})
    assert status == 401 and error["error"]["code"] == "UNAUTHORIZED"


def test_the_local_stack_serves_the_openapi_document(local_url: str) -> None:
    status, _, doc = call(local_url, "GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert "/sessions/{sessionId}" in doc["paths"]
    assert doc["servers"][0]["url"] == local_url


def test_a_chat_turn_shows_up_in_usage(local_url: str) -> None:
    """Issue 5's "done when": chat -> UsageRecorded on the bus -> rule -> recorder -> GET /usage.

    The relay pumps every 0.1 s, so this usually takes one or two reads; the deadline only bounds a
    lost event, and is generous so a slow machine cannot fail it."""
    headers = {**DEVICE, "X-Device-Id": "local-usage-device-01"}
    status, _, reply = call(local_url, "POST", "/chat", {"message": "I visited Paris last summer."}, headers)
    assert status == 200, reply
    deadline = time.monotonic() + 30.0
    usage: Any = None
    while time.monotonic() < deadline:  # the bus relay delivers on a background thread
        status, _, usage = call(local_url, "GET", "/usage", headers=headers)
        if status == 200 and usage["totals"]["events"]:
            break
    assert usage["totals"]["events"] == 1, usage
    assert usage["totals"]["inputTokens"] == reply["usage"]["inputTokens"]
    assert usage["days"][0]["engine"] == reply["engine"]
