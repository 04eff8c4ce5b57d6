"""What every action adapter is given: the domain services (built only when an action needs them)
and the call's time limits."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from parley.analysis.service import Analyses
    from parley.speech.transcription.models import StreamUrlOut
    from parley.speech.transcription.service import Transcriptions
    from parley.speech.voices import Speaker
    from parley.tutor.chat import Chat
    from parley.tutor.service import Tutor

# Pauses between reads while waiting for a workflow: quick at first (short recordings finish in a few
# seconds), then once a second. Each read is one strongly consistent GetItem.
WAIT_PAUSES = (0.5, 0.5, 1.0)
T = TypeVar("T")
Answer = tuple[BaseModel, int]  # the reply, and its HTTP status


@dataclass(frozen=True)
class Services:
    """The domain services, built only when an action needs them (a function's cold start pays for
    what it uses). The same services answer the resource routes."""

    tutor: Tutor
    chat: Callable[[], Chat]
    speaker: Callable[[], Speaker]
    transcriptions: Callable[[], Transcriptions]
    analyses: Callable[[], Analyses]
    stream_url: Callable[[str, str, int], StreamUrlOut]  # (owner, language, sample rate)


@dataclass(frozen=True)
class Call:
    """One action's time: ``deadline`` is when its answer must be ready, ``wait_until`` (earlier) how
    long a workflow is waited for, both in ``clock()`` time."""

    deadline: float
    wait_until: float
    clock: Callable[[], float] = field(default=time.monotonic)
    pause: Callable[[float], None] = field(default=time.sleep)

    def wait(self, read: Callable[[], T], finished: Callable[[T], bool]) -> T:
        """``read()`` until ``finished``, pausing between reads (quick at first), while a pause still
        ends before ``wait_until``; returns the last read."""
        latest = read()
        for pause in itertools.chain(WAIT_PAUSES, itertools.repeat(WAIT_PAUSES[-1])):
            if finished(latest) or self.clock() + pause > self.wait_until:
                break
            self.pause(pause)
            latest = read()
        return latest
