"""The speech of a streamed tutor turn (``parley.tutor.voice_turn``): each sentence synthesised in a
worker thread, in order, while the model writes on, and metered without a request more than needed on
the way to the first audio."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parley.core.errors import ParleyError
from parley.core.observability import logger
from parley.speech.voices import Speaker
from parley.tutor.models import Accent, Gender
from parley.tutor.sentences import Segment
from parley.tutor.voice_frames import Sink, audio_frames
from parley.usage.events import UsageEvent
from parley.usage.publisher import PublishOutcome, UsagePublisher
from parley.usage.quota import Limits, QuotaGuard


# -- metering, without a request more than needed on the way to the first audio ------------------------
class TurnQuota(QuotaGuard):
    """The quota guard of one turn: the owner's limits are read once for the turn (the early check, the
    model's reservation and each sentence's reservation all use them); every reservation is still its
    own conditional write, so the guarantees are the guard's."""

    def __init__(self, guard: QuotaGuard) -> None:
        super().__init__(guard.store, guard.defaults)
        self._limits: dict[str, Limits] = {}

    def limits_for(self, owner: str) -> Limits:
        if owner not in self._limits:
            self._limits[owner] = super().limits_for(owner)
        return self._limits[owner]


class AfterAudioPublisher(UsagePublisher):
    """The speech worker's publisher: a sentence's usage event is put on the bus right after its audio
    frames are posted (``flush``), not before - the learner hears it a PutEvents sooner. The event is
    the same one, settling the same reservation; ``flush`` runs whatever happens to the frames."""

    def __init__(self, publisher: UsagePublisher) -> None:
        self.inner = publisher
        self.prices = publisher.prices
        self.held: list[UsageEvent] = []

    def publish(self, event: UsageEvent) -> PublishOutcome:
        self.held.append(event)
        return PublishOutcome.PUBLISHED

    def flush(self) -> None:
        held, self.held = self.held, []
        for event in held:
            self.inner.publish(event)


# -- speech, in a worker thread ----------------------------------------------------------------------
@dataclass
class SpeechWorker:
    """Synthesises the queued sentences in order and posts their audio, while the model writes on. The
    voice (the session's accent and gender) is looked up in the worker's own thread as the turn starts."""

    speaker: Speaker
    owner: str
    voice_of: Callable[[], tuple[Accent, Gender]]
    sink: Sink
    clock: Callable[[], float]
    started: float
    first_audio: float | None = None
    sentences: int = 0
    characters: int = 0
    failed: dict[str, Any] | None = None
    _queue: queue.Queue[tuple[int, Segment] | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None

    def start(self) -> SpeechWorker:
        self._thread = threading.Thread(target=self._run, name="parley-voice-turn-speech", daemon=True)
        self._thread.start()
        return self

    def say(self, segment: Segment) -> None:
        self._queue.put((self.sentences, segment))
        self.sentences += 1

    def finish(self) -> None:
        """Wait until every queued sentence is spoken (or skipped)."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        """Speak nothing more (the turn failed): drop what is queued, then wait for the worker."""
        self.failed = self.failed or {"code": "CANCELLED"}
        self.finish()

    def _run(self) -> None:
        try:
            accent, gender = self.voice_of()
        except Exception:  # the turn itself fails the same way (a missing session): nothing to speak
            accent, gender = "US", "female"
            self.failed = {"code": "NOT_FOUND", "message": "No session to speak for.", "details": []}
        while (item := self._queue.get()) is not None:
            index, segment = item
            if self.sink.gone or self.failed is not None:
                continue  # no one to hear it, or speech already failed: no Polly call, nothing billed
            try:
                self._speak(index, segment, accent, gender)
            finally:
                publisher = self.speaker.publisher
                if isinstance(publisher, AfterAudioPublisher):
                    publisher.flush()

    def _speak(self, index: int, segment: Segment, accent: Accent, gender: Gender) -> None:
        try:
            speech = self.speaker.speak(self.owner, segment.text, accent, gender)
        except ParleyError as exc:  # over quota, Polly unavailable: the text goes on, speech stops
            self.failed = {"code": exc.code, "message": exc.message, "details": exc.details}
        except Exception:
            logger.exception("Speech failed mid-turn")
            self.failed = {"code": "INTERNAL_ERROR", "message": "Speech failed; the text goes on.", "details": []}
        if self.failed is not None:
            self.sink.send({"type": "speech-error", "sentence": index, "error": self.failed})
            return
        self.characters += speech.characters
        for frame in audio_frames(index, segment, speech):
            if not self.sink.send(frame):
                break
            if self.first_audio is None:
                self.first_audio = self.clock() - self.started
