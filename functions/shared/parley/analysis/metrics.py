"""Measured, deterministic metrics of a learner's session: no model, known answers.

Three sources, each used only where it exists:

- the learner's own messages (``role == "user"``): mean length of turn, lexical diversity (MTLD and
  type-token ratio) and the filler-word rate;
- the transcripts saved under the session (word timings and recognition confidences): speech rate,
  articulation rate, pause statistics and mean recognition confidence (a labelled pronunciation
  *proxy*: how sure the recogniser was of what it heard, not a pronunciation assessment);
- the learner's English messages checked by Harper (``parley.ai.grammar``): grammar and word errors per
  100 words, each quoting the learner (measured accuracy, beside the judge's Accuracy score).

Definitions (also in docs/api/analysis.md):

- A *word* is a run of letters/digits, with inner apostrophes or hyphens (``don't``, ``well-known``).
- *Pause*: a gap of at least ``PAUSE_THRESHOLD_S`` (0.25 s, the usual threshold in fluency
  research) between the end of one word and the start of the next in the same recording.
  A *long pause* is one longer than 1 s.
- *Speech rate* (words per minute) = words / speaking time, where speaking time is the span from
  the first word's start to the last word's end of each recording (leading and trailing silence
  excluded, pauses included). *Articulation rate* leaves the pauses out.
- *MTLD* (McCarthy & Jarvis 2010): the mean length of sequential word runs that keep a type-token
  ratio above 0.72, computed forwards and backwards and averaged. Undefined (``None``) when no
  factor completes and every word is new; unreliable under ~100 words, which ``mtldReliable`` says.
- *Fillers*: um/uh/er and their spellings always count; ``like`` counts only when it is set off by
  a comma (``it was, like, huge``) or next to another filler (``um like``), and never right after a
  word that makes it a verb or a preposition (``I like``, ``would like``, ``looks like``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import fmean

from pydantic import Field

from parley.core.models import ApiModel

PAUSE_THRESHOLD_S = 0.25
LONG_PAUSE_S = 1.0
MTLD_THRESHOLD = 0.72
MTLD_RELIABLE_TOKENS = 100
LOW_CONFIDENCE = 0.6
MAX_GRAMMAR_EVIDENCE = 20

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
VOCAL_FILLERS = frozenset({"um", "umm", "ummm", "uh", "uhh", "uhm", "er", "erm", "err", "hmm", "hm", "mm", "mmm"})
# "like" right after one of these is a verb or a preposition, not a filler.
_LIKE_NOT_FILLER_AFTER = frozenset({
    "i", "you", "we", "they", "would", "i'd", "you'd", "we'd", "they'd", "he'd", "she'd", "do", "don't", "does",
    "doesn't", "did", "didn't", "really", "also", "just", "still", "feel", "feels", "felt", "look", "looks",
    "looked", "sound", "sounds", "sounded", "seem", "seems", "something", "anything", "nothing", "much", "more",
    "most", "not", "to", "is", "was", "be",
})


def words_of(text: str) -> list[str]:
    """The words of ``text``, lower-cased, curly apostrophes straightened."""
    return [w.lower() for w in _WORD.findall(text.translate(_APOSTROPHES))]


# -- lexical diversity ---------------------------------------------------------------------------
def _mtld_pass(tokens: Sequence[str], threshold: float) -> float | None:
    factors = 0.0
    types: set[str] = set()
    count = 0
    ttr = 1.0
    for token in tokens:
        count += 1
        types.add(token)
        ttr = len(types) / count
        if ttr <= threshold:
            factors += 1
            types, count, ttr = set(), 0, 1.0
    factors += (1.0 - ttr) / (1.0 - threshold)  # the partial factor of the leftover run
    return len(tokens) / factors if factors > 0 else None


def mtld(tokens: Sequence[str], threshold: float = MTLD_THRESHOLD) -> float | None:
    """MTLD: the average of the forward and the backward pass; None when undefined."""
    if not tokens:
        return None
    forward = _mtld_pass(tokens, threshold)
    backward = _mtld_pass(list(reversed(tokens)), threshold)
    if forward is None or backward is None:
        return None
    return (forward + backward) / 2


def type_token_ratio(tokens: Sequence[str]) -> float | None:
    return len(set(tokens)) / len(tokens) if tokens else None


# -- fillers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    word: str
    start: int
    end: int


def fillers_in(text: str) -> list[str]:
    """The filler words of one message, in order (see the module docstring for the rules)."""
    clean = text.translate(_APOSTROPHES)
    tokens = [_Token(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(clean)]
    found: list[str] = []
    for i, token in enumerate(tokens):
        if token.word in VOCAL_FILLERS:
            found.append(token.word)
            continue
        if token.word != "like":
            continue
        before = tokens[i - 1] if i else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        gap_before = clean[before.end if before else 0:token.start]
        gap_after = clean[token.end:after.start if after else len(clean)]
        if before is not None and before.word in _LIKE_NOT_FILLER_AFTER and "," not in gap_before:
            continue
        comma_set = "," in gap_before or "," in gap_after or "\u2026" in gap_after or "..." in gap_after
        next_to_filler = any(t is not None and (t.word in VOCAL_FILLERS or t.word == "like") for t in (before, after))
        if comma_set or next_to_filler:
            found.append("like")
    return found


# -- the measurement models (stored in the report and returned by the API) -------------------------
class TextMetrics(ApiModel):
    """From the learner's own messages."""

    learner_turns: int = Field(description="Messages the learner wrote or spoke.")
    learner_words: int
    mean_length_of_turn: float = Field(description="Learner words per learner turn.")
    type_token_ratio: float | None = Field(description="Distinct words / words (falls as texts get longer).")
    mtld: float | None = Field(description="Lexical diversity (MTLD, threshold 0.72); None when undefined.")
    mtld_reliable: bool = Field(description=f"At least {MTLD_RELIABLE_TOKENS} words, where MTLD is stable.")
    fillers: int = Field(description="Filler words (um, uh, er…, like-as-filler).")
    fillers_per_100_words: float
    filler_breakdown: dict[str, int]


class LowConfidenceWord(ApiModel):
    word: str
    confidence: float
    at_seconds: float = Field(description="Where in its recording the word starts.")


class SpeechMetrics(ApiModel):
    """From the transcripts' word timings and confidences."""

    recordings: int
    spoken_words: int
    speaking_seconds: float = Field(description="First word start to last word end, summed over recordings.")
    words_per_minute: float = Field(description="Speech rate: words / speaking time (pauses included).")
    articulation_rate_wpm: float | None = Field(description="Words / (speaking time minus pauses).")
    pause_threshold_seconds: float = PAUSE_THRESHOLD_S
    pauses: int
    mean_pause_seconds: float | None
    longest_pause_seconds: float | None
    long_pauses: int = Field(description=f"Pauses longer than {LONG_PAUSE_S:g} s.")
    pauses_per_minute: float
    mean_confidence: float | None = Field(
        description="PRONUNCIATION PROXY: the recogniser's mean confidence in the words it heard (0-1).")
    low_confidence_share: float | None = Field(description=f"Share of words heard with confidence < {LOW_CONFIDENCE}.")
    least_certain_words: list[LowConfidenceWord] = Field(description="Up to 5 words the recogniser was least sure of.")


class GrammarIssueEvidence(ApiModel):
    """One grammar issue, quoting the learner: ``quote == learner turn text[start:end]``."""

    turn: int = Field(description="The learner's turn it is in (1 = their first message).")
    quote: str = Field(description="The learner's own words, exactly as written.")
    start: int = Field(description="Where the quote starts in that turn (code points).")
    end: int
    kind: str = Field(description="The grammar checker's kind of issue, e.g. Agreement, Spelling.")
    message: str
    suggestion: str | None = Field(description="What the quoted words would become, if the checker has a fix.")


class GrammarMetrics(ApiModel):
    """MEASURED ACCURACY: grammar and word errors the checker (Harper) finds in the learner's English
    turns. Counts kinds that are a learner's errors (agreement, tense, articles, word choice,
    spelling, repeated words...), not capitals, punctuation or style advice."""

    checker: str = Field(description="The grammar checker, e.g. harper.")
    english_turns: int = Field(description="Learner turns checked (turns with Korean/CJK text are not).")
    words: int = Field(description="Words in the checked turns.")
    issues: int
    issues_per_100_words: float
    by_kind: dict[str, int]
    evidence: list[GrammarIssueEvidence] = Field(
        description=f"Up to {MAX_GRAMMAR_EVIDENCE} issues, each quoting the learner, in turn order.")


class Measurements(ApiModel):
    text: TextMetrics | None = None
    speech: SpeechMetrics | None = None
    grammar: GrammarMetrics | None = None


@dataclass(frozen=True)
class SpokenWord:
    text: str
    start: float
    end: float
    confidence: float | None = None


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def measure_text(learner_messages: Sequence[str]) -> TextMetrics | None:
    if not learner_messages:
        return None
    tokens = [w for message in learner_messages for w in words_of(message)]
    fillers = [f for message in learner_messages for f in fillers_in(message)]
    breakdown: dict[str, int] = {}
    for filler in fillers:
        breakdown[filler] = breakdown.get(filler, 0) + 1
    return TextMetrics(
        learner_turns=len(learner_messages),
        learner_words=len(tokens),
        mean_length_of_turn=round(len(tokens) / len(learner_messages), 2),
        type_token_ratio=_r(type_token_ratio(tokens), 3),
        mtld=_r(mtld(tokens)),
        mtld_reliable=len(tokens) >= MTLD_RELIABLE_TOKENS,
        fillers=len(fillers),
        fillers_per_100_words=round(100 * len(fillers) / len(tokens), 2) if tokens else 0.0,
        filler_breakdown=breakdown,
    )


def _is_word(text: str) -> bool:
    return bool(_WORD.search(text))


def measure_speech(recordings: Iterable[Sequence[SpokenWord]]) -> SpeechMetrics | None:
    """Speech metrics over recordings (each a sequence of words in time order)."""
    kept = [[w for w in sorted(words, key=lambda w: w.start) if _is_word(w.text)] for words in recordings]
    kept = [words for words in kept if words]
    if not kept:
        return None
    spans = [max(0.0, words[-1].end - words[0].start) for words in kept]
    gaps = [b.start - a.end for words in kept for a, b in itertools.pairwise(words)]
    pauses = [g for g in gaps if g >= PAUSE_THRESHOLD_S]
    total_words = sum(len(words) for words in kept)
    speaking = sum(spans)
    articulating = speaking - sum(pauses)
    confidences = [w.confidence for words in kept for w in words if w.confidence is not None]
    unsure = [(w.confidence, i, w) for i, w in enumerate(w for words in kept for w in words)
              if w.confidence is not None and w.confidence < LOW_CONFIDENCE]
    least = [w for _, _, w in sorted(unsure, key=lambda item: (item[0], item[1]))[:5]]
    return SpeechMetrics(
        recordings=len(kept),
        spoken_words=total_words,
        speaking_seconds=round(speaking, 2),
        words_per_minute=round(60 * total_words / speaking, 1) if speaking > 0 else 0.0,
        articulation_rate_wpm=_r(60 * total_words / articulating if articulating > 0 else None, 1),
        pauses=len(pauses),
        mean_pause_seconds=_r(fmean(pauses) if pauses else None),
        longest_pause_seconds=_r(max(pauses) if pauses else None),
        long_pauses=sum(1 for p in pauses if p > LONG_PAUSE_S),
        pauses_per_minute=round(60 * len(pauses) / speaking, 2) if speaking > 0 else 0.0,
        mean_confidence=_r(fmean(confidences) if confidences else None, 3),
        low_confidence_share=_r(sum(1 for c in confidences if c < LOW_CONFIDENCE) / len(confidences)
                                if confidences else None, 3),
        least_certain_words=[
            LowConfidenceWord(word=" ".join(_WORD.findall(w.text)), confidence=round(w.confidence or 0.0, 3),
                              at_seconds=round(w.start, 2))
            for w in least
        ],
    )


def measure_grammar(learner_messages: Sequence[str], *, dialect: str = "US") -> GrammarMetrics | None:
    """Harper's learner errors in the learner's English turns (None without English turns)."""
    from parley.ai import grammar

    english = [(i, m) for i, m in enumerate(learner_messages, start=1) if m.strip() and grammar.is_english(m)]
    if not english:
        return None
    evidence: list[GrammarIssueEvidence] = []
    by_kind: dict[str, int] = {}
    words = 0
    for turn, message in english:
        words += len(words_of(message))
        for issue in grammar.check(message, dialect=dialect):  # type: ignore[arg-type]
            if not issue.learner_error or not issue.text.strip():
                continue
            by_kind[issue.kind] = by_kind.get(issue.kind, 0) + 1
            if len(evidence) < MAX_GRAMMAR_EVIDENCE:
                evidence.append(GrammarIssueEvidence(turn=turn, quote=issue.text, start=issue.start, end=issue.end,
                                                     kind=issue.kind, message=issue.message,
                                                     suggestion=issue.replacement))
    issues = sum(by_kind.values())
    return GrammarMetrics(checker=grammar.CHECKER, english_turns=len(english), words=words, issues=issues,
                          issues_per_100_words=round(100 * issues / words, 2) if words else 0.0,
                          by_kind=by_kind, evidence=evidence)


def measure(learner_messages: Sequence[str], recordings: Iterable[Sequence[SpokenWord]], *,
            dialect: str | None = "US") -> Measurements:
    """Every measurement; ``dialect=None`` leaves grammar unmeasured (no grammar checker)."""
    return Measurements(text=measure_text(learner_messages), speech=measure_speech(recordings),
                        grammar=measure_grammar(learner_messages, dialect=dialect) if dialect else None)
