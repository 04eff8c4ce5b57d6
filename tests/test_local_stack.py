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
EMULATED_AWS: dict[str, str] = {}  # a local stack's URL -> the endpoint of the AWS it emulates


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
    EMULATED_AWS[url] = first.split("AWS emulated at ", 1)[1].split(")")[0] if "AWS emulated at " in first else ""
    assert "Ctrl-C" in lines.until("Ctrl-C"), lines.seen
    assert any("curl" in line for line in lines.seen), lines.seen
    yield url
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=30)  # the stack gives its threads 10 s, then exits regardless
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the local stack ignored Ctrl-C for 30 s: {lines.seen[-5:]}") from None
    assert code == 0, lines.seen
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


def test_a_burst_at_the_quota_limit_overshoots_by_at_most_one_reservation(local_url: str) -> None:
    """Twenty chat requests at once, one token under the owner's limit, through the local stack's
    HTTP server (docs/security.md states the bound)."""
    import boto3

    from parley.core.ids import utcnow
    from parley.data import keys
    from parley.usage.quota import month_of

    # Given an owner with a monthly limit of 2,000 tokens, one token short of it
    device, limit = "local-burst-device-01", 2_000
    headers = {**DEVICE, "X-Device-Id": device}
    table = boto3.resource("dynamodb", endpoint_url=EMULATED_AWS[local_url], region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local").Table("parley-local")
    table.put_item(Item={"PK": f"DEVICE#{device}", "SK": keys.QUOTA_SK, "monthlyTokens": limit})
    table.put_item(Item={"PK": f"DEVICE#{device}", "SK": keys.usage_month_sk(month_of(utcnow())),
                         "type": "USAGE_MONTH", "totalTokens": limit - 1, "committedTokens": limit - 1})
    statuses: list[int] = []
    start = threading.Barrier(20)

    def ask() -> None:
        start.wait()
        statuses.append(call(local_url, "POST", "/chat", {"message": "Tell me about trains."}, headers)[0])

    # When twenty requests arrive at once
    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one is answered; once its usage is recorded, the month is within one reservation of the limit
    assert sorted(statuses) == [200] + [429] * 19, statuses
    deadline = time.monotonic() + 30.0
    quota: Any = None
    while time.monotonic() < deadline:  # the bus relay delivers on a background thread
        quota = call(local_url, "GET", "/usage", headers=headers)[2]["quota"]
        if quota["tokensReserved"] == 0:
            break
    assert quota["tokensReserved"] == 0 and quota["exceeded"] is True, quota
    used = quota["tokensUsed"]
    print(f"\nlocal stack burst: 20 requests, 1 answered, {used} tokens used of {limit} (overshoot {used - limit})")
    assert limit <= used < limit + 1_000  # one chat turn's reservation: its prompt's bytes + 300 output tokens
