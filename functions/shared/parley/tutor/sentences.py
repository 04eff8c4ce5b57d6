"""Sentences out of a reply that is still being written: what the streamed turn speaks, one at a time.

``SentenceSplitter`` takes the model's text deltas as they arrive (``feed``) and hands back each
segment as soon as it is certainly complete; ``finish`` hands back the rest (a reply with no final
punctuation). Pure: no clock, no I/O - the tests drive it delta by delta.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (repeated or mixed: ``?!``, ``...``), after any closing
quotes or brackets, where whitespace follows. It does not end:

- inside a number (``3.5``, ``1,000``, ``v2.0``): no whitespace follows the point;
- after a title or a Latin abbreviation (``Mr.``, ``Dr.``, ``e.g.``, ``i.e.``, ``vs.``) or a single
  initial (``J. Smith``; not ``I``);
- after an abbreviation that may also end a sentence (``U.S.``, ``etc.``, ``a.m.``) unless the next
  word starts with a capital letter - so for those the splitter waits for the next word's first letter;
- at a mark inside closing quotes followed by a lowercase word (``"Wonderful!" she said.``).

The first segment may be a **first clause**: when the reply's first sentence is still being written
and a clause of at least ``FIRST_CLAUSE_MIN_WORDS`` words has ended (``,``, ``;``, ``:`` or a dash,
then whitespace), the clause is handed back on its own (``clause=True``) so that speech can start
before the whole first sentence is written. Only the first: later sentences are spoken whole, which
keeps their intonation, while the first clause's audio plays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIRST_CLAUSE_MIN_WORDS = 4  # "Oh, ..." and "Well, ..." are too short to speak on their own
FIRST_CLAUSE_MIN_CHARS = 16

# Never a sentence end: a title before a name, a Latin abbreviation inside a sentence.
NEVER_FINAL = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "mt", "vs", "e.g", "i.e", "cf", "approx", "fig", "vol", "pp", "dept",
    "jan", "feb", "apr", "jun", "jul", "aug", "sept", "oct", "nov",
})
# A sentence end only when the next word starts with a capital letter ("in the U.S. Then ..." but
# "the U.S. economy"; "at 9 a.m. We ..." but "at 9 a.m. and ...").
MAYBE_FINAL = frozenset({"etc", "u.s", "u.k", "u.n", "e.u", "a.m", "p.m", "ph.d", "b.a", "m.a", "b.sc", "d.c",
                         "st", "jr", "sr", "inc", "ltd", "corp"})

_TERMINALS = ".!?…"
_CLOSERS = "\"'”’)]}»"
_CLAUSE = ",;:—–"
_WORD_BEFORE = re.compile(r"([A-Za-z](?:[A-Za-z.]*[A-Za-z])?)\.$")


@dataclass(frozen=True)
class Segment:
    """A piece of the reply to speak: a whole sentence, or (the first only) its first clause."""

    text: str
    clause: bool = False


class SentenceSplitter:
    def __init__(self, *, first_clause: bool = True) -> None:
        self.first_clause = first_clause
        self._buffer = ""
        self._emitted = 0  # segments handed back so far
        self._in_first_sentence = True  # the first sentence has not ended yet

    def feed(self, delta: str) -> list[Segment]:
        """Add a delta; the segments that are now complete, in order."""
        self._buffer += delta
        found: list[Segment] = []
        while (segment := self._next()) is not None:
            found.append(segment)
        return found

    def finish(self) -> list[Segment]:
        """The end of the reply: whatever is left is the last segment."""
        rest = self._buffer.strip()
        self._buffer = ""
        if not rest:
            return []
        self._emitted += 1
        return [Segment(rest)]

    # -- finding the next boundary -------------------------------------------------------------
    def _next(self) -> Segment | None:
        text = self._buffer
        start = len(text) - len(text.lstrip())
        i = start
        while i < len(text):
            ch = text[i]
            if ch in _TERMINALS:
                end = self._sentence_end(text, i)
                if end is None:
                    return None  # undecided until more text arrives
                if end > 0:
                    return self._cut(end, clause=False)
            elif ch in _CLAUSE and self._wants_clause():
                end = self._clause_end(text, start, i)
                if end is None:
                    return None
                if end > 0:
                    return self._cut(end, clause=True)
            i += 1
        return None

    def _wants_clause(self) -> bool:
        return self.first_clause and self._emitted == 0 and self._in_first_sentence

    def _cut(self, end: int, *, clause: bool) -> Segment:
        piece, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
        self._emitted += 1
        if not clause:
            self._in_first_sentence = False
        return Segment(piece, clause=clause)

    def _sentence_end(self, text: str, i: int) -> int | None:
        """Where the sentence whose terminal mark is at ``i`` ends (an index after it), 0 when this
        mark ends nothing, None when the text so far cannot tell."""
        j = i
        while j < len(text) and text[j] in _TERMINALS:
            j += 1
        while j < len(text) and text[j] in _CLOSERS:
            j += 1
        if j >= len(text):
            return None  # "...3." may go on as "3.5"; "Really?" may go on as "Really?!"
        if not text[j].isspace():
            return 0  # 3.5, e.g.x, U.S.A (the next mark is examined on its own)
        if any(c in _CLOSERS for c in text[i:j]):  # '"Wonderful!" she said.': a quote inside a sentence
            nxt = _next_letter(text, j)
            if nxt is None:
                return None
            if nxt.islower():
                return 0
        if text[i] != "." or (j - i > 1 and text[i:j].rstrip(_CLOSERS).count(".") > 1):
            return j  # ! ? … and an ellipsis always end a sentence
        word = _word_before(text, i)
        if word is None:
            return j
        lowered = word.lower()
        if lowered in NEVER_FINAL or (len(word) == 1 and word.isupper() and word != "I"):
            return 0  # a title, a Latin abbreviation, an initial ("J. Smith"); "So do I." ends
        if lowered in MAYBE_FINAL:
            nxt = _next_letter(text, j)
            if nxt is None:
                return None
            return j if nxt.isupper() or nxt in "\"“'(" else 0
        return j

    def _clause_end(self, text: str, start: int, i: int) -> int | None:
        """Where a first clause ending with the mark at ``i`` ends, 0 when it is not one, None when the
        text so far cannot tell."""
        if i + 1 >= len(text):
            return None
        dash = text[i] in "—–"
        if not dash and not text[i + 1].isspace():
            return 0  # 1,000 and 10:30 are not clause ends
        clause = text[start:i]
        if len(clause.split()) < FIRST_CLAUSE_MIN_WORDS or len(clause.strip()) < FIRST_CLAUSE_MIN_CHARS:
            return 0
        return i + 1


def _next_letter(text: str, j: int) -> str | None:
    """The first character after the whitespace at ``j``, or None when it has not arrived yet."""
    k = j
    while k < len(text) and text[k].isspace():
        k += 1
    return text[k] if k < len(text) else None


def _word_before(text: str, i: int) -> str | None:
    """The word a ``.`` at ``i`` closes (``Mr``, ``e.g``, ``U.S``), or None after a non-letter."""
    found = _WORD_BEFORE.search(text[max(0, i - 12):i + 1])
    return found.group(1) if found else None


def split_sentences(text: str, *, first_clause: bool = False) -> list[Segment]:
    """A whole text's segments (a replayed reply, the tests)."""
    splitter = SentenceSplitter(first_clause=first_clause)
    return splitter.feed(text) + splitter.finish()
