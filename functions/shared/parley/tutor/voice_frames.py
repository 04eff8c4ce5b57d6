"""The frames of a streamed tutor turn (``parley.tutor.voice_turn``): the connection as the turn uses
it, the reply's text coalesced into ``text`` frames, each sentence's speech as ``audio`` frames, and the
saved turn as the ``complete`` frame. See docs/voice-turn.md for the protocol."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from parley.core.observability import logger
from parley.proofreading.frames import FRAME_BUDGET, Channel, ConnectionGone, encode, split_text
from parley.speech.voices import Speech
from parley.tutor.chat_models import ChatReply
from parley.tutor.sentences import Segment

TEXT_FLUSH_SECONDS = 0.15  # a text frame at least this often while a sentence is being written...
TEXT_FLUSH_CHARS = 200  # ...or once this much text is waiting



class Sink:
    """Posts one turn's frames (from the turn's thread and the speech worker, one at a time). A post
    that finds the connection gone marks the sink gone: nothing more is sent, the turn goes on."""

    def __init__(self, channel: Channel, request_id: str | None, on_gone: Callable[[], None]) -> None:
        self.channel = channel
        self.request_id = request_id
        self.on_gone = on_gone
        self.gone = False
        self.sent: list[str] = []  # the types of the frames posted, in order (logs and tests)
        self._lock = threading.Lock()

    def send(self, frame: Mapping[str, Any]) -> bool:
        with self._lock:
            if self.gone:
                return False
            try:
                self.channel.send({**frame, "requestId": self.request_id})
            except ConnectionGone:
                self.gone = True
                logger.info("Client gone mid-turn: no more frames; the reply is still saved")
                with contextlib.suppress(Exception):
                    self.on_gone()
                return False
            self.sent.append(str(frame.get("type")))
            return True


class TextFrames:
    """The reply's text as it is generated, coalesced into ``text`` frames (fewer posts, same text)."""

    def __init__(self, sink: Sink, clock: Callable[[], float]) -> None:
        self.sink = sink
        self.clock = clock
        self.pending: list[str] = []
        self.size = 0
        self.seq = 0
        self.last = clock()

    def add(self, delta: str) -> None:
        self.pending.append(delta)
        self.size += len(delta)
        if self.size >= TEXT_FLUSH_CHARS or self.clock() - self.last >= TEXT_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        text, self.pending, self.size = "".join(self.pending), [], 0
        for piece in split_text(text, FRAME_BUDGET - 200):
            self.seq += 1
            self.sink.send({"type": "text", "seq": self.seq, "text": piece})
        self.last = self.clock()


def audio_frames(index: int, segment: Segment, speech: Speech, budget: int = FRAME_BUDGET) -> list[dict[str, Any]]:
    """One sentence's speech as ``audio`` frames, each under ``budget`` bytes once encoded (with the
    ``requestId`` the sink adds): the base64 of the MP3 split into ``parts``."""
    base: dict[str, Any] = {"type": "audio", "requestId": "x" * 64, "sentence": index, "part": 9999, "parts": 9999,
                            "text": segment.text, "contentType": speech.content_type, "voice": speech.voice.voice_id,
                            "engine": speech.voice.engine, "data": ""}
    if segment.clause:
        base["clause"] = True
    room = budget - len(encode(base)) - 8
    if room < 1024:
        raise ValueError("a sentence too long to send with its audio")
    data = speech.audio_base64
    pieces = [data[i:i + room] for i in range(0, len(data), room)] or [""]
    del base["requestId"]
    return [{**base, "part": n, "parts": len(pieces), "data": piece} for n, piece in enumerate(pieces)]



def send_complete(sink: Sink, reply: ChatReply) -> None:
    """The saved turn, in one frame; one too large for a frame goes first in ``turn-part`` frames."""
    turn = reply.model_dump(mode="json", by_alias=True)
    whole = {"type": "complete", "turn": turn, "replayed": reply.replayed}
    if len(encode({**whole, "requestId": "x" * 64})) <= FRAME_BUDGET:
        sink.send(whole)
        return
    data = json.dumps(turn, ensure_ascii=False, separators=(",", ":"))
    pieces = split_text(data, FRAME_BUDGET - 300)
    for index, piece in enumerate(pieces):
        sink.send({"type": "turn-part", "index": index, "count": len(pieces), "data": piece})
    sink.send({"type": "complete", "turn": None, "turnParts": len(pieces), "replayed": reply.replayed})
