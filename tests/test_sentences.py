"""The streamed turn's sentence splitter: whole texts, and the same texts fed a character or a word at a time
(a segment is handed back only once it is certainly complete, and as soon as it is)."""

from __future__ import annotations

import re

import pytest

from parley.tutor.sentences import Segment, SentenceSplitter, split_sentences


def texts(segments: list[Segment]) -> list[str]:
    return [s.text for s in segments]


def fed(text: str, pieces: list[str] | None = None, *, first_clause: bool = False) -> list[Segment]:
    splitter = SentenceSplitter(first_clause=first_clause)
    out: list[Segment] = []
    for piece in pieces if pieces is not None else list(text):
        out += splitter.feed(piece)
    return out + splitter.finish()


CASES = [
    ("That sounds fun! Where did you go hiking?", ["That sounds fun!", "Where did you go hiking?"]),
    ("I met Mr. Smith and Dr. Jones. They were kind.", ["I met Mr. Smith and Dr. Jones.", "They were kind."]),
    ("Bring snacks, e.g. apples or nuts. Then rest.", ["Bring snacks, e.g. apples or nuts.", "Then rest."]),
    ("That is, i.e. the plan. OK?", ["That is, i.e. the plan.", "OK?"]),
    ("I lived in the U.S. for years. Now I'm back.", ["I lived in the U.S. for years.", "Now I'm back."]),
    ("I lived in the U.S. Then I moved.", ["I lived in the U.S.", "Then I moved."]),
    ("The U.S. economy grew.", ["The U.S. economy grew."]),
    ("It costs 3.5 dollars. That's cheap.", ["It costs 3.5 dollars.", "That's cheap."]),
    ("About 1,000 people came. Wow!", ["About 1,000 people came.", "Wow!"]),
    ("We start at 10:30 a.m. and finish late. Fine?", ["We start at 10:30 a.m. and finish late.", "Fine?"]),
    ("Really?! You did that? Amazing...  Tell me more.",
     ["Really?!", "You did that?", "Amazing...", "Tell me more."]),
    ('She said "Go home." Then she left.', ['She said "Go home."', "Then she left."]),
    ("He asked (quietly.) Nobody answered.", ["He asked (quietly.)", "Nobody answered."]),
    ("J. R. Tolkien wrote it. Have you read it?", ["J. R. Tolkien wrote it.", "Have you read it?"]),
    ("So do I. Let's go.", ["So do I.", "Let's go."]),
    ("Apples, pears, etc. are fruit. Etc. Right?", ["Apples, pears, etc. are fruit.", "Etc.", "Right?"]),
    ("Version 2.0 is out", ["Version 2.0 is out"]),
    ("no final punctuation here", ["no final punctuation here"]),
    ("Ends with a mark.", ["Ends with a mark."]),
    ("", []),
    ("   ", []),
    ("“Wonderful!” she said. Yes.", ["“Wonderful!” she said.", "Yes."]),
    ("Great job! 😀 Next question?", ["Great job!", "😀 Next question?"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:30] or "empty" for c in CASES])
def test_whole_text(text: str, expected: list[str]) -> None:
    assert texts(split_sentences(text)) == expected


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:30] or "empty" for c in CASES])
def test_fed_character_by_character_gives_the_same(text: str, expected: list[str]) -> None:
    assert texts(fed(text)) == expected


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:30] or "empty" for c in CASES])
def test_fed_word_by_word_gives_the_same(text: str, expected: list[str]) -> None:
    assert texts(fed(text, re.findall(r"\S+\s*", text))) == expected


def test_a_sentence_is_handed_back_as_soon_as_it_is_certainly_complete() -> None:
    splitter = SentenceSplitter(first_clause=False)
    assert splitter.feed("That sounds fun!") == []  # "fun!?" may follow
    assert texts(splitter.feed(" ")) == ["That sounds fun!"]
    assert splitter.feed("It costs 3.") == []  # 3.5 may follow
    assert splitter.feed("5 dollars") == []
    assert texts(splitter.feed(". W")) == ["It costs 3.5 dollars."]
    assert texts(splitter.finish()) == ["W"]


def test_a_maybe_final_abbreviation_waits_for_the_next_word() -> None:
    splitter = SentenceSplitter(first_clause=False)
    assert splitter.feed("I flew to the U.S. ") == []
    assert texts(splitter.feed("We")) == ["I flew to the U.S."]


def test_the_first_clause_is_handed_back_alone_so_speech_starts_early() -> None:
    pieces = re.findall(r"\S+\s*", "That sounds like a lovely weekend, and hiking is great exercise. "
                                   "Where did you go? Did you enjoy it, or was it tiring?")
    segments = fed("", pieces, first_clause=True)
    assert [(s.text, s.clause) for s in segments] == [
        ("That sounds like a lovely weekend,", True),
        ("and hiking is great exercise.", False),
        ("Where did you go?", False),
        ("Did you enjoy it, or was it tiring?", False),  # only the first sentence is cut at a clause
    ]


def test_a_short_opening_clause_is_not_spoken_alone() -> None:
    segments = split_sentences("Oh, that sounds fun! Tell me more.", first_clause=True)
    assert [(s.text, s.clause) for s in segments] == [("Oh, that sounds fun!", False), ("Tell me more.", False)]


def test_numbers_are_never_clause_ends() -> None:
    segments = split_sentences("We sold 1,000,000 copies by 10:30 today, which is a record.", first_clause=True)
    assert [(s.text, s.clause) for s in segments] == [
        ("We sold 1,000,000 copies by 10:30 today,", True), ("which is a record.", False)]


def test_a_dash_ends_a_first_clause() -> None:
    segments = split_sentences("That sounds really exciting—where did you go?", first_clause=True)
    assert [(s.text, s.clause) for s in segments] == [
        ("That sounds really exciting—", True), ("where did you go?", False)]


def test_the_segments_put_together_are_the_reply() -> None:
    text = "Wow, that's a long walk for one day! I'd be tired. Did you take many breaks, e.g. for lunch?"
    segments = split_sentences(text, first_clause=True)
    assert " ".join(s.text for s in segments) == text
