"""The history budget of a chat turn: how much of a session's conversation is sent to the model."""

from __future__ import annotations

from collections.abc import Sequence

from parley.ai.caching import estimate_tokens
from parley.ai.types import Turn

WINDOW_STEP_TURNS = 4  # the history window's start moves by this many learner turns at a time



def fit_history(history: Sequence[Turn], new_message: str, budget_tokens: int,
                step: int = WINDOW_STEP_TURNS) -> tuple[list[Turn], bool]:
    """The most recent part of ``history`` that fits, with the new message, in ``budget_tokens``.

    The window starts at the beginning or at a learner turn. Its start moves in steps of ``step`` learner turns
    so that the same prefix (system prompt + the window's first turns) is sent for several turns
    in a row and stays cacheable; only when even that does not fit is the cut made at any turn.
    Returns (turns to send, whether anything was left out).
    """
    room = budget_tokens - estimate_tokens(new_message)
    sizes = [estimate_tokens(t.text) for t in history]
    suffix = [0] * (len(history) + 1)
    for i in range(len(history) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + sizes[i]
    starts = [i for i, t in enumerate(history) if i == 0 or t.role == "user"]
    for candidates in (starts[::step], starts):
        for i in candidates:
            if suffix[i] <= room:
                return list(history[i:]), i > 0
    return [], bool(history)
