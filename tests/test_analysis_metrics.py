"""The measured metrics on hand-made transcripts whose answers were worked out by hand."""

from __future__ import annotations

import pytest

from parley.analysis.metrics import SpokenWord, fillers_in, measure, measure_speech, measure_text, mtld, words_of


# -- lexical diversity ---------------------------------------------------------------------------
@pytest.mark.parametrize(("tokens", "expected"), [
    # every second word repeats: a factor closes at each repeat (TTR 0.5 <= 0.72) -> 4 words / 2 factors
    ("a a a a", 2.0),
    # a b | a closes at TTR 2/3; the same both ways -> 3 / 1
    ("a b a", 3.0),
    # forward: a a | b c -> 1 factor + partial 0 -> 4.0; backward: c b a a ends at TTR 0.75 ->
    # partial (1 - 0.75) / 0.28 = 0.892857 -> 4 / 0.892857 = 4.48; average 4.24
    ("a a b c", 4.24),
])
def test_mtld_known_answers(tokens: str, expected: float) -> None:
    assert mtld(tokens.split()) == pytest.approx(expected, abs=0.005)


def test_mtld_is_undefined_when_no_factor_can_close() -> None:
    assert mtld(["every", "word", "here", "is", "new"]) is None
    assert mtld([]) is None


def test_mtld_rewards_a_varied_text_over_a_repetitive_one() -> None:
    varied = words_of("Yesterday my sister and I visited an old castle near the coast, and the fishermen "
                      "there still mend their nets by hand while the tourists photograph the crumbling towers "
                      "and the gulls circle the harbour.")
    repetitive = words_of("I like it and I like it and I like the food and I like the people and I like it.")
    assert mtld(varied) > 2 * mtld(repetitive)  # type: ignore[operator]


def test_words_are_lower_cased_with_inner_apostrophes_and_hyphens_kept() -> None:
    assert words_of("Don\u2019t stop — it's WELL-known, 42 times!") == ["don't", "stop", "it's", "well-known", "42",
                                                                       "times"]


# -- fillers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("Um, I think, like, it was good", ["um", "like"]),
    ("I like coffee", []),
    ("I would like, um, a coffee", ["um"]),
    ("It was, like, huge", ["like"]),
    ("It looks like rain", []),
    ("It's like a dream", []),
    ("Like, I don't know", ["like"]),
    ("uh like we went there", ["uh", "like"]),
    ("erm\u2026 the er thing, hmm", ["erm", "er", "hmm"]),
    ("Umbrella and error are words", []),
])
def test_filler_rules(text: str, expected: list[str]) -> None:
    assert fillers_in(text) == expected


# -- text metrics --------------------------------------------------------------------------------
def test_text_metrics_of_three_learner_turns() -> None:
    # Given 3 turns of 5, 6 and 7 words: 18 words, 15 distinct, 2 fillers (um, like)
    text = measure_text(["I went to the market.", "Um, it was, like, very big.",
                         "I bought apples and I bought pears."])

    assert text is not None
    assert (text.learner_turns, text.learner_words) == (3, 18)
    assert text.mean_length_of_turn == 6.0
    assert text.type_token_ratio == pytest.approx(15 / 18, abs=0.001)
    assert (text.fillers, text.filler_breakdown) == (2, {"um": 1, "like": 1})
    assert text.fillers_per_100_words == pytest.approx(11.11)
    assert text.mtld_reliable is False


def test_no_learner_messages_means_no_text_metrics() -> None:
    assert measure_text([]) is None


# -- speech metrics ------------------------------------------------------------------------------
RECORDING_1 = [
    SpokenWord("I", 0.0, 0.2, 0.95),
    SpokenWord("went", 0.3, 0.6, 0.90),   # gap 0.1 s: not a pause
    SpokenWord("to", 0.6, 0.7, 0.99),     # gap 0.0 s
    SpokenWord("the", 1.5, 1.6, 0.80),    # gap 0.8 s: a pause
    SpokenWord("market.", 1.6, 2.2, 0.50),
]
RECORDING_2 = [
    SpokenWord("um", 0.5, 0.8, 0.40),
    SpokenWord("…", 0.8, 0.8, 0.0),       # punctuation only: not a word, not timed
    SpokenWord("yes", 2.3, 2.6, 0.70),    # gap 1.5 s: a long pause
]


def test_speech_metrics_from_word_timings() -> None:
    speech = measure_speech([RECORDING_1, RECORDING_2])

    assert speech is not None
    # 7 words over 2.2 s + 2.1 s of speaking time
    assert (speech.recordings, speech.spoken_words, speech.speaking_seconds) == (2, 7, 4.3)
    assert speech.words_per_minute == pytest.approx(97.7)          # 60 * 7 / 4.3
    assert speech.articulation_rate_wpm == pytest.approx(210.0)    # 60 * 7 / (4.3 - 0.8 - 1.5)
    assert (speech.pauses, speech.long_pauses) == (2, 1)
    assert speech.mean_pause_seconds == pytest.approx(1.15)
    assert speech.longest_pause_seconds == pytest.approx(1.5)
    assert speech.pauses_per_minute == pytest.approx(27.91)        # 60 * 2 / 4.3
    assert speech.mean_confidence == pytest.approx(0.749)          # 5.24 / 7
    assert speech.low_confidence_share == pytest.approx(0.286)     # 2 of 7 below 0.6
    assert [(w.word, w.confidence) for w in speech.least_certain_words] == [("um", 0.4), ("market", 0.5)]


def test_word_order_in_the_transcript_does_not_matter() -> None:
    assert measure_speech([list(reversed(RECORDING_1))]) == measure_speech([RECORDING_1])


def test_speech_metrics_only_where_transcripts_exist() -> None:
    measured = measure(["Hello there my friend."], [])
    assert measured.text is not None and measured.speech is None
    assert measure_speech([[]]) is None


def test_a_single_word_recording_has_no_pauses_and_no_division_by_zero() -> None:
    speech = measure_speech([[SpokenWord("Hi", 1.0, 1.0, 0.9)]])
    assert speech is not None
    assert (speech.pauses, speech.mean_pause_seconds, speech.words_per_minute) == (0, None, 0.0)
