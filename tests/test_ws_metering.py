"""The WebSocket message function meters every answer it starts, whichever way the answer ends: a
client that disconnects mid-answer is metered for the input and the output produced so far."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from local_stack.bus import BusRelay
from local_stack.lambdas import FunctionRunner
from parley import keys
from parley.ids import utcnow
from parley.quota import month_of
from tests.test_proofreading_websocket import Sockets, Streamer, Ws, engine, sockets

__all__ = ["engine", "sockets"]  # the WebSocket tests' fixtures, reused here


@pytest.fixture
def ws(runner: FunctionRunner, aws: dict[str, str], sockets: Sockets) -> Ws:
    return Ws(runner)


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
