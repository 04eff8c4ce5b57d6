"""The streamed tutor turn in the local stack (``make run`` in its own process): a standard WebSocket client,
the offline tutor and the local Polly (real MP3), over loopback."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from local_stack.child import child_stack

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "local-voice-device-01"


@dataclass
class Local:
    rest: str
    ws: str

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.rest + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"X-Device-Id": DEVICE, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def connect(self) -> ClientConnection:
        return connect(f"{self.ws}/?deviceId={DEVICE}", open_timeout=30, compression=None, max_size=None)


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    with child_stack("--no-web") as stack:
        yield Local(stack.rest, stack.websocket)


def frames_until_complete(ws: ClientConnection) -> list[dict[str, Any]]:
    seen = [json.loads(ws.recv(timeout=60))]
    while seen[-1]["type"] not in ("complete", "error"):
        seen.append(json.loads(ws.recv(timeout=60)))
    return seen


def test_a_streamed_turn_over_the_local_websocket_speaks_real_mp3(local: Local) -> None:
    session = local.post("/sessions", {"topic": "travel", "accent": "AU", "gender": "female"})
    message = {"action": "tutorTurn", "requestId": "t-1", "sessionId": session["sessionId"],
               "messageId": "local-turn-0001", "text": "I want to visit Japan next year.", "inputMode": "voice"}
    with local.connect() as ws:
        ws.send(json.dumps(message))
        frames = frames_until_complete(ws)
        assert frames[0]["type"] == "accepted" and frames[-1]["type"] == "complete", frames[-1]
        reply = frames[-1]["turn"]["reply"]
        assert frames[-1]["turn"]["engine"] == "offline"
        assert "".join(f["text"] for f in frames if f["type"] == "text").strip() == reply
        audio = [f for f in frames if f["type"] == "audio"]
        assert audio and {f["voice"] for f in audio} == {"Olivia"}  # AU female, neural
        for sentence in {f["sentence"] for f in audio}:
            mp3 = base64.b64decode("".join(f["data"] for f in audio if f["sentence"] == sentence))
            assert len(mp3) > 1000 and mp3[0] == 0xFF and (mp3[1] & 0xE0) == 0xE0  # an MPEG frame sync
        assert " ".join(f["text"] for f in audio if f["part"] == 0) == reply

        ws.send(json.dumps(message))  # the same turn again: replayed, no model call
        again = frames_until_complete(ws)
        assert again[-1]["replayed"] is True and again[-1]["turn"]["reply"] == reply
