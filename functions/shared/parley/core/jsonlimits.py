"""Limits a JSON text must keep before any parser sees it.

Python's ``json`` recurses once per nesting level (about 1,000 levels exhaust the interpreter's
stack) and refuses integers of more than 4,300 digits with a ``ValueError``; pydantic's parser has
limits of its own. A body or message beyond them would crash the parse (a 5xx, or a dead WebSocket
message) instead of being answered. ``check`` refuses it first, with a 400 ``JSON_TOO_COMPLEX`` in
the one error body: nesting deeper than ``MAX_DEPTH``, or a number with more than ``MAX_DIGITS``
digits in a row. No Parley request nests deeper than a handful of levels, and no number it takes
has more than a few digits.

The scan is linear: strings are skipped with one regular expression (in C), then only the
brackets and digits left are looked at, so a 6 MB body of base64 audio costs a few milliseconds.
"""

from __future__ import annotations

import re

from parley.core.errors import BadRequest

MAX_DEPTH = 32
MAX_DIGITS = 100
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_LONG_NUMBER = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")
_BRACKET = re.compile(r"[\[\]{}]")


class JsonTooComplex(BadRequest):
    code = "JSON_TOO_COMPLEX"


def check(text: str | bytes) -> None:
    """Raise ``JsonTooComplex`` if ``text`` nests deeper than ``MAX_DEPTH`` or carries a number of
    more than ``MAX_DIGITS`` digits (anything else, well-formed or not, is for the parser to judge)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    skeleton = _STRING.sub('""', text)
    if _LONG_NUMBER.search(skeleton):
        raise JsonTooComplex(f"A number in the JSON has more than {MAX_DIGITS} digits.",
                             details=[{"limit": "numberDigits", "max": MAX_DIGITS}])
    depth = 0
    for bracket in _BRACKET.finditer(skeleton):
        if bracket.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonTooComplex(f"The JSON nests deeper than {MAX_DEPTH} levels.",
                                     details=[{"limit": "depth", "max": MAX_DEPTH}])
        else:
            depth -= 1
