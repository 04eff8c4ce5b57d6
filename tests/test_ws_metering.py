"""The WebSocket message function meters every answer it starts, whichever way the answer ends: a
client that disconnects mid-answer is metered for the input and the output produced so far."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from local_stack.bus import BusRelay
from local_stack.lambdas import FunctionRunner
from parley.core.ids import utcnow
from parley.data import keys
from parley.usage.quota import month_of
from tests.test_proofreading_websocket import Sockets, Streamer, Ws, engine, sockets, ws

__all__ = ["engine", "sockets", "ws"]  # the WebSocket tests' fixtures, reused here


def month_item(aws: dict[str, str], owner: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(aws["Table"])
    return table.get_item(Key={"PK": owner, "SK": keys.usage_month_sk(month_of(utcnow()))}).get("Item") or {}


def test_a_client_gone_mid_answer_is_metered_for_what_was_produced(ws: Ws, sockets: Sockets, engine: Any,
                                                                   bus: BusRelay, aws: dict[str, str]) -> None:
    # Given a long streamed answer, and a client that leaves after its third message
    device = f"leaver-{uuid.uuid4().hex[:12]}"
    streamer = engine(Streamer("word " * 4_000, delta=500))
    connection_id = ws.connect(device)
    sockets.gone_after[connection_id] = 3
    # When it asks
    assert ws.send(connection_id, {"action": "sendMessage", "mode": "chat", "text": "Tell me everything."}) == {
        "statusCode": 200}
    bus.pump()  # the usage event reaches the recorder
    # Then the engine's stream was released, and the month shows the input and the output so far
    assert streamer.closed
    month = month_item(aws, f"DEVICE#{device}")
    assert month["events"] == 1
    assert month["inputTokens"] > 0
    produced = len(sockets.frames[connection_id]) - 1  # frames after "accepted" carried text
    assert 0 < month["outputTokens"] < 5_000  # the whole answer would be ~5,000 tokens (900 reported at the end)
    assert produced >= 1
    assert not [name for name in month if name.startswith("reservation#")]  # the reservation was settled
    assert month["committedTokens"] == month["totalTokens"]


def test_a_complete_answer_is_metered_with_the_engines_figures(ws: Ws, sockets: Sockets, engine: Any,
                                                               bus: BusRelay, aws: dict[str, str]) -> None:
    device = f"stayer-{uuid.uuid4().hex[:12]}"
    engine(Streamer("A short answer."))
    connection_id = ws.connect(device)
    ws.send(connection_id, {"action": "sendMessage", "mode": "chat", "text": "Hi"})
    assert sockets.messages(connection_id)[-1]["type"] == "complete"
    bus.pump()
    month = month_item(aws, f"DEVICE#{device}")
    assert (month["events"], month["inputTokens"], month["outputTokens"]) == (1, 50, 900)


# -- one client's flood does not take the stage's rate ------------------------------------------
def test_an_owner_over_its_message_rate_is_throttled_then_disconnected(ws: Ws, sockets: Sockets, runner: FunctionRunner,
                                                                        aws: dict[str, str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from parley.usage import ratelimit

    monkeypatch.setattr(ratelimit, "wall_clock", lambda: 1_800_000_000.0)  # one window, whatever the time
    limit = runner.module("WsMessageFunction").ENV.ws_messages_per_minute
    flooder, neighbour = (f"{name}-{uuid.uuid4().hex[:10]}" for name in ("flooder", "neighbour"))
    connection = ws.connect(flooder)
    for n in range(limit):
        ws.send(connection, {"action": "sendMessage", "requestId": f"m{n}", "text": "Hi"}, answer=False)
    assert [m["type"] for m in sockets.messages(connection)] == ["accepted"] * limit
    # the next one is refused, with when to retry (and no answer is started for it)
    ws.send(connection, {"action": "sendMessage", "requestId": "over", "text": "Hi"}, answer=False)
    refused = sockets.messages(connection)[-1]
    assert (refused["requestId"], refused["error"]["code"]) == ("over", "THROTTLED")
    assert refused["error"]["details"][0]["limit"] == limit and len(ws.pending) == limit
    # pings (heartbeats) are not counted, and another owner is not affected
    ws.send(connection, {"action": "ping", "requestId": "p1"}, route="ping", answer=False)
    assert sockets.messages(connection)[-1]["type"] == "pong"
    other = ws.connect(neighbour)
    ws.send(other, {"action": "sendMessage", "requestId": "n1", "text": "Hi"}, answer=False)
    assert sockets.messages(other)[-1]["type"] == "accepted"
    # a flood (twice the limit) gets its connection closed
    for n in range(limit):
        ws.send(connection, {"action": "sendMessage", "requestId": f"f{n}", "text": "Hi"}, answer=False)
    table = boto3.resource("dynamodb").Table(aws["Table"])
    assert "Item" not in table.get_item(Key={"PK": keys.connection_pk(connection), "SK": keys.CONNECTION_SK})
    assert sockets.messages(connection)[-1]["error"]["code"] in ("THROTTLED", "UNAUTHORIZED")
