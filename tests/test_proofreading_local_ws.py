"""The local stack serves the proofreading WebSocket API: ``make run`` in its own process, driven by
a minimal RFC 6455 client over loopback."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """Just enough of a WebSocket client: handshake, masked text frames out, frames in."""

    def __init__(self, port: int, query: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split()[1])
        while self.file.readline() not in (b"\r\n", b""):
            pass

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message, ensure_ascii=False).encode()
        mask = os.urandom(4)
        size = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack(">H", size))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> dict[str, Any]:
        head = self.file.read(2)
        size = head[1] & 0x7F
        if size == 126:
            size = struct.unpack(">H", self.file.read(2))[0]
        elif size == 127:
            size = struct.unpack(">Q", self.file.read(8))[0]
        return json.loads(self.file.read(size))

    def until(self, kind: str) -> list[dict[str, Any]]:
        seen = [self.receive()]
        while seen[-1]["type"] not in (kind, "error"):
            seen.append(self.receive())
        return seen

    def close(self) -> None:
        self.sock.sendall(bytes([0x88, 0x82]) + b"\0\0\0\0" + struct.pack(">H", 1000))
        self.sock.close()


@pytest.fixture(scope="module")
def ws_port() -> Iterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PARLEY_WS_PORT"] = str(port)
    proc = subprocess.Popen([sys.executable, "-m", "local_stack", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "Ctrl-C" in line or not line:
            break
    yield port
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_connect_needs_a_device_id(ws_port: int) -> None:
    assert Client(ws_port, "").status == 401
    assert Client(ws_port, "deviceId=x").status == 401


def test_proofread_streams_over_the_local_websocket(ws_port: int) -> None:
    client = Client(ws_port, "deviceId=local-ws-device-01")
    assert client.status == 101
    client.send({"action": "ping", "requestId": "p"})
    assert client.receive()["type"] == "pong"
    client.send({"action": "sendMessage", "requestId": "r1", "text": "나는 할수있다. teh end"})
    messages = client.until("complete")
    assert messages[0]["type"] == "accepted" and any(m["type"] == "delta" for m in messages)
    assert messages[-1]["result"]["correctedText"] == "나는 할 수 있다. the end"
    client.send({"action": "nonsense"})
    assert client.receive()["error"]["code"] == "VALIDATION_ERROR"
    client.close()


def test_a_resend_after_a_reconnect_is_answered_once(ws_port: int) -> None:
    """The answer runs in its own (asynchronous) invocation; the client drops, reconnects and resends
    the same requestId: it gets the answer - replayed or resumed, never run twice."""
    message = {"action": "sendMessage", "requestId": "again-1", "text": "teh end"}
    first = Client(ws_port, "deviceId=local-ws-device-02")
    first.send(message)
    assert first.receive() == {"type": "accepted", "requestId": "again-1", "mode": "proofread"}
    first.close()

    second = Client(ws_port, "deviceId=local-ws-device-02")
    second.send(message)
    frames = second.until("complete")
    assert frames[-1]["type"] == "complete" and frames[-1]["result"]["correctedText"] == "the end"
    assert frames[0]["type"] in ("resumed", "complete")  # resumed if still running, else replayed
    if frames[0]["type"] == "complete":
        assert frames[0]["replayed"] is True
    second.send({"action": "sendMessage", "requestId": "again-1", "text": "teh end"})
    assert second.receive()["replayed"] is True  # finished now, whatever it was a moment ago
    second.close()
