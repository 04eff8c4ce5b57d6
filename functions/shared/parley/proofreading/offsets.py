"""Placing the model's corrections on the input text.

Offsets are Python ``str`` indices — Unicode code points — so a Hangul syllable, a Latin letter
and an emoji each count one. Every correction also carries UTF-16 offsets (JavaScript string
indices), which differ after characters outside the Basic Multilingual Plane.

A model is good at spotting errors and bad at counting characters, so its offset is a hint:

1. if ``original`` is exactly at the hinted offset, the correction stands;
2. otherwise it is *repaired*: moved to the occurrence of ``original`` nearest the hint (or, with
   no hint, the only occurrence, or the first one after the previous correction);
3. if ``original`` does not occur in a free part of the text (not inside another correction), or
   the correction changes nothing, it is *dropped*.

The corrected text is the input with the placed corrections applied, so it always agrees with
the corrections a UI shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from parley.proofreading.models import Correction, ModelCorrection


@dataclass(frozen=True)
class Placement:
    corrections: list[Correction]
    corrected_text: str
    repaired: int
    dropped: int


def utf16_units(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what JavaScript's ``length`` returns)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def occurrences(text: str, needle: str) -> list[int]:
    found, start = [], text.find(needle)
    while start != -1:
        found.append(start)
        start = text.find(needle, start + 1)
    return found


class _Spans:
    def __init__(self) -> None:
        self.taken: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self.taken)

    def take(self, start: int, end: int) -> None:
        self.taken.append((start, end))


def _choose(text: str, proposal: ModelCorrection, spans: _Spans, after: int) -> tuple[int | None, bool]:
    """(start, repaired) for one proposal, or (None, False) to drop it."""
    size = len(proposal.original)
    hint = proposal.offset
    if hint is not None and text.startswith(proposal.original, hint) and spans.free(hint, hint + size):
        return hint, False
    candidates = [o for o in occurrences(text, proposal.original) if spans.free(o, o + size)]
    if not candidates:
        return None, False
    if hint is not None:
        return min(candidates, key=lambda o: (abs(o - hint), o)), True
    if len(candidates) == 1:
        return candidates[0], True
    later = [o for o in candidates if o >= after]
    return (later[0] if later else candidates[0]), True


def place(text: str, proposals: Iterable[ModelCorrection]) -> Placement:
    spans = _Spans()
    placed: list[tuple[int, ModelCorrection]] = []
    repaired = dropped = 0
    after = 0
    for proposal in proposals:
        if proposal.original == proposal.replacement:
            dropped += 1
            continue
        start, moved = _choose(text, proposal, spans, after)
        if start is None:
            dropped += 1
            continue
        end = start + len(proposal.original)
        spans.take(start, end)
        placed.append((start, proposal))
        repaired += int(moved)
        after = end
    placed.sort(key=lambda pair: pair[0])

    corrections: list[Correction] = []
    pieces: list[str] = []
    cursor = utf16_cursor = 0
    for start, proposal in placed:
        utf16_cursor += utf16_units(text[cursor:start])
        length = len(proposal.original)
        corrections.append(Correction(
            offset=start, length=length, utf16_offset=utf16_cursor, utf16_length=utf16_units(proposal.original),
            original=proposal.original, replacement=proposal.replacement, category=proposal.category,
            explanation=proposal.explanation.strip(),
        ))
        pieces.append(text[cursor:start])
        pieces.append(proposal.replacement)
        utf16_cursor += utf16_units(proposal.original)
        cursor = start + length
    pieces.append(text[cursor:])
    return Placement(corrections=corrections, corrected_text="".join(pieces), repaired=repaired, dropped=dropped)
