"""English grammar checking with Harper (``harper-py``): offline, deterministic, tens of milliseconds.

Harper ships in a Lambda layer of its own (``layers/harper``), attached to the functions that lint:
the analysis workflow's measure step, and the proofreading functions when the AI engine is the
offline one. ``check(text)`` returns ``GrammarIssue`` objects whose ``start``/``end`` are code point
offsets into ``text`` (Python ``str`` indices, as Harper's spans are), each with Parley's category
and Harper's first suggestion.

Korean (or any CJK) text never reaches Harper: the text is cut into sentences, and only runs of
sentences without Hangul, kana or CJK ideographs are linted, each at its own offset. Harper's
``Linter`` costs about a second to build and is not thread-safe: one per dialect per process,
built on first use, used under a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Category = Literal["spelling", "spacing", "grammar", "punctuation", "style"]
Dialect = Literal["US", "UK", "AU", "IN", "CA"]
CHECKER = "harper"

# Harper's lint kinds -> Parley's correction categories.
CATEGORIES: dict[str, Category] = {
    "Spelling": "spelling", "Typo": "spelling", "Capitalization": "spelling",
    "BoundaryError": "spacing", "Formatting": "spacing",
    "Punctuation": "punctuation",
    "Agreement": "grammar", "Grammar": "grammar", "Miscellaneous": "grammar", "Repetition": "grammar",
    "Malapropism": "grammar", "Eggcorn": "grammar", "Usage": "grammar", "Nonstandard": "grammar",
    "Redundancy": "style", "WordChoice": "style", "Style": "style", "Readability": "style",
    "Enhancement": "style", "Regionalism": "style",
}
# The kinds that count as a learner's errors in the analysis (accuracy): grammar and vocabulary,
# not capitals, punctuation or layout (spoken turns get them from the recogniser, not the learner),
# nor style advice.
LEARNER_ERROR_KINDS = frozenset({
    "Agreement", "Grammar", "Miscellaneous", "Repetition", "Redundancy", "Malapropism", "Eggcorn", "Usage",
    "Nonstandard", "WordChoice", "Spelling", "Typo", "BoundaryError",
})
# Hangul (jamo, compatibility jamo, syllables), kana and CJK ideographs.
_NOT_ENGLISH = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
                          "\uac00-\ud7af\uf900-\ufaff]")
_SENTENCE = re.compile(r"[^\n.!?。！？]*(?:[.!?。！？]+|\n+|$)")


@dataclass(frozen=True)
class GrammarIssue:
    start: int
    end: int
    text: str  # the checked text's own characters at [start, end)
    kind: str  # Harper's lint kind, e.g. "Agreement"
    category: Category
    message: str
    replacement: str | None  # the text [start, end) becomes with Harper's first suggestion

    @property
    def learner_error(self) -> bool:
        return self.kind in LEARNER_ERROR_KINDS


class GrammarUnavailable(Exception):
    """harper-py is not installed (the function lacks the Harper layer)."""


def is_english(text: str) -> bool:
    """Whether Harper may see ``text``: no Hangul, kana or CJK in it."""
    return not _NOT_ENGLISH.search(text)


def english_runs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of the stretches of ``text`` made of sentences with no Korean/CJK in them."""
    run_start: int | None = None
    position = 0
    for match in _SENTENCE.finditer(text):
        if match.start() == match.end():
            if match.start() >= len(text):
                break
            continue
        if is_english(match.group(0)):
            if run_start is None:
                run_start = match.start()
        elif run_start is not None:
            yield run_start, match.start()
            run_start = None
        position = match.end()
    if run_start is not None:
        yield run_start, position


_DIALECTS = {"US": "AMERICAN", "UK": "BRITISH", "AU": "AUSTRALIAN", "IN": "INDIAN", "CA": "CANADIAN"}
_LINTERS: dict[str, tuple[Any, threading.Lock]] = {}
_LINTERS_LOCK = threading.Lock()


def available() -> bool:
    try:
        import harper  # noqa: F401
    except ImportError:
        return False
    return True


def linter(dialect: Dialect = "US") -> tuple[Any, threading.Lock]:
    """The process's Harper linter for ``dialect`` (built once) and the lock to use it under."""
    with _LINTERS_LOCK:
        if dialect not in _LINTERS:
            try:
                import harper
            except ImportError as exc:
                raise GrammarUnavailable("harper-py is not installed (the Harper layer)") from exc
            _LINTERS[dialect] = (harper.Linter(getattr(harper.Dialect, _DIALECTS.get(dialect, "AMERICAN"))),
                                 threading.Lock())
        return _LINTERS[dialect]


def _issue(lint: Any, text: str, offset: int) -> GrammarIssue:
    start, end = offset + int(lint.span.start), offset + int(lint.span.end)
    original = text[start:end]
    replacement: str | None = None
    if lint.suggestions:
        suggestion = lint.suggestions[0]
        kind = int(suggestion.kind)
        if kind == 1:  # REMOVE
            replacement = ""
        elif kind == 2:  # INSERT_AFTER
            replacement = original + suggestion.replacement_text
        else:  # REPLACE
            replacement = suggestion.replacement_text
    kind_name = str(lint.lint_kind)
    return GrammarIssue(start=start, end=end, text=original, kind=kind_name,
                        category=CATEGORIES.get(kind_name, "grammar"), message=str(lint.message),
                        replacement=replacement)


def check(text: str, *, dialect: Dialect = "US") -> list[GrammarIssue]:
    """Harper's findings in the English parts of ``text``, in order of position."""
    runs = list(english_runs(text))
    if not runs:
        return []
    found: list[GrammarIssue] = []
    checker, lock = linter(dialect)
    with lock:
        for start, end in runs:
            chunk = text[start:end]
            if chunk.strip():
                found += [_issue(lint, text, start) for lint in checker.lint(chunk, language="plaintext")]
    return sorted(found, key=lambda issue: (issue.start, issue.end))


def warm_up(dialect: Dialect = "US") -> None:
    """Build the linter now (e.g. in a Lambda's init phase)."""
    linter(dialect)
