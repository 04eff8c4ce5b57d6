"""The local stack serves the proofreading WebSocket API: ``make run`` in its own process, driven by
a standard client (the ``websockets`` package's) over loopback, so anything that connects here
connects to API Gateway the same way."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local_stack.child import child_stack

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LocalWs:
    url: str
    callbacks: str

    def connect(self, query: str) -> ClientConnection:
        return connect(f"{self.url}/?{query}", open_timeout=30, compression=None)

    def post(self, path: str, body: bytes = b"", method: str = "POST") -> tuple[int, Any]:
        request = urllib.request.Request(self.callbacks + path, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=30))


def known_to_the_server(ws: ClientConnection) -> None:
    """The handshake ends before the server's connection thread has registered the connection; a
    ping answered means it has, so a drop posted now reaches this connection."""
    ws.send(json.dumps({"action": "ping", "requestId": "known"}))
    assert receive(ws)["type"] == "pong"


def until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    seen = [receive(ws)]
    while seen[-1]["type"] not in (kind, "error"):
        seen.append(receive(ws))
    return seen


def drain(ws: ClientConnection) -> tuple[list[str], ConnectionClosed]:
    """The types of the messages that arrive until the connection ends, and how it ended."""
    seen: list[str] = []
    while True:
        try:
            seen.append(receive(ws)["type"])
        except ConnectionClosed as closed:
            return seen, closed


@pytest.fixture(scope="module")
def local_ws() -> Iterator[LocalWs]:
    with child_stack("--no-web") as stack:
        yield LocalWs(stack.websocket, stack.callbacks)


@pytest.fixture(scope="module")
def idle_ws() -> Iterator[LocalWs]:
    # A 3 s idle timeout would also cut a stream whose first frame is slow on a loaded machine, so
    # only the idle test's own stack has it (API Gateway's is 10 minutes).
    with child_stack("--no-web", env_overrides={"PARLEY_WS_IDLE_SECONDS": "3"}) as stack:
        yield LocalWs(stack.websocket, stack.callbacks)


def test_connect_needs_a_device_id(local_ws: LocalWs) -> None:
    for query in ("", "deviceId=x"):
        with pytest.raises(InvalidStatus) as denied:
            local_ws.connect(query)
        assert denied.value.response.status_code == 401


def test_proofread_streams_over_the_local_websocket(local_ws: LocalWs) -> None:
    with local_ws.connect("deviceId=local-ws-device-01") as ws:
        ws.send(json.dumps({"action": "ping", "requestId": "p"}))
        pong = receive(ws)
        assert (pong["type"], pong["requestId"]) == ("pong", "p")
        ws.send(json.dumps({"action": "sendMessage", "requestId": "r1", "text": "나는 할수있다. teh end"},
                           ensure_ascii=False))
        messages = until(ws, "complete")
        assert messages[0]["type"] == "accepted" and any(m["type"] == "delta" for m in messages)
        assert messages[-1]["result"]["correctedText"] == "나는 할 수 있다. the end"
        ws.send(json.dumps({"action": "nonsense"}))
        assert receive(ws)["error"]["code"] == "VALIDATION_ERROR"


def test_a_message_over_128_kb_closes_the_connection_with_1009(local_ws: LocalWs) -> None:
    with local_ws.connect("deviceId=local-ws-device-02") as ws:
        ws.send(json.dumps({"action": "sendMessage", "requestId": "big", "text": "a" * (128 * 1024)}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_the_callback_api_answers_410_for_a_client_that_has_gone(local_ws: LocalWs) -> None:
    assert local_ws.post("/@connections/nobody-here=", b'{"type": "x"}')[0] == 410
    assert local_ws.post("/@connections/nobody-here=", method="DELETE")[0] == 410


def test_an_idle_connection_is_closed_as_api_gateway_does(idle_ws: LocalWs) -> None:
    with idle_ws.connect("deviceId=local-ws-device-03") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)  # PARLEY_WS_IDLE_SECONDS=3 in this stack
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def test_the_drop_hook_cuts_connections_without_a_close_frame(local_ws: LocalWs) -> None:
    with local_ws.connect("deviceId=local-ws-device-04") as ws:
        known_to_the_server(ws)
        status, body = local_ws.post("/@local/drop")
        assert status == 200 and body["connections"] >= 1
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd is None  # abnormal closure (1006): no close frame arrived


def test_the_drop_hook_can_cut_a_stream_midway(local_ws: LocalWs) -> None:
    with local_ws.connect("deviceId=local-ws-device-05") as ws:
        known_to_the_server(ws)
        assert local_ws.post("/@local/drop", json.dumps({"afterFrames": 2}).encode())[0] == 200
        ws.send(json.dumps({"action": "sendMessage", "requestId": "cut", "text": "teh end. " * 200}))
        seen, closed = drain(ws)
        assert closed.rcvd is None  # cut, not closed
        assert seen[0] == "accepted" and len(seen) == 2 and "complete" not in seen


def test_a_resend_after_a_reconnect_is_answered_once(local_ws: LocalWs) -> None:
    """The answer runs in its own (asynchronous) invocation; the client leaves, reconnects and resends
    the same requestId: it gets the answer - resumed or replayed - and the model runs once."""
    message = json.dumps({"action": "sendMessage", "requestId": "again-1", "text": "teh end"})
    with local_ws.connect("deviceId=local-ws-device-06") as first:
        first.send(message)
        assert receive(first) == {"type": "accepted", "requestId": "again-1", "mode": "proofread"}
    with local_ws.connect("deviceId=local-ws-device-06") as second:
        second.send(message)
        frames = until(second, "complete")
        assert frames[-1]["type"] == "complete" and frames[-1]["result"]["correctedText"] == "the end"
        assert frames[0]["type"] == "resumed" or frames[0].get("replayed") is True  # still running, or done
        second.send(message)
        assert receive(second)["replayed"] is True  # finished now, whatever it was a moment ago
