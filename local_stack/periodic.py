"""A task the local stack runs in the background every few seconds, until it is stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Self

LOG = logging.getLogger("local_stack")


class Periodic:
    """Calls ``task`` every ``interval`` seconds on a daemon thread; a failing round is logged
    and the next one still runs. ``stop`` ends the loop and joins the thread."""

    def __init__(self, name: str, task: Callable[[], Any]) -> None:
        self.name = name
        self.task = task
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval: float) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.task()
                except Exception:
                    LOG.exception("%s failed a round", self.name)

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None


class InBackground:
    """A part of the local stack that also works by itself while the stack runs: ``start()`` calls
    its ``round`` every ``interval`` seconds (``Periodic``) until ``stop()``. Tests call the round
    themselves instead, when they want each step under their control."""

    name = "A background task"
    interval = 1.0
    _background: Periodic | None = None

    def round(self) -> Any:
        raise NotImplementedError

    def start(self, *, interval: float | None = None) -> Self:
        self._background = Periodic(self.name, self.round)
        self._background.start(self.interval if interval is None else interval)
        return self

    def stop(self) -> None:
        if self._background is not None:
            self._background.stop()
