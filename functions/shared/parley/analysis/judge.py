"""The judge: one structured model call (one retry on invalid output), then every quote checked.

``Judge.judge(conversation, measurements)`` asks the provider for a ``JudgeAnswer`` through the
engines' structured output (the schema goes with the request, once; pydantic still validates the
answer, since the engines do not enforce lengths or ranges). Its output cap, ``MAX_TOKENS``, fits the
largest valid answer with room to spare (see below): an answer cut off at the cap
(``stop_reason`` ``max_tokens``) is never parsed as if it were whole. An answer that is not valid -
or was cut off - is asked for once more, with the problem stated; a second invalid answer raises
``InvalidModelOutput``. A refusal raises ``ModelRefused`` at once (no retry, billed once). Both calls
take their time from the task's deadline.

Then the answer is checked against the learner's own words: a correction or vocabulary tip whose
quote of the learner does not occur in one of the learner's messages is dropped (and counted in
``quoteCheck.dropped``) — it is never shown as theirs. The match ignores case, runs of whitespace,
curly versus straight quotes, and punctuation or quote marks at the ends of the quote, and
the quote must start and end on word boundaries ("i" is not found inside "like").
Pronunciation is scored only when transcripts gave speech metrics; otherwise it says "not measured".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from parley.ai.deadline import MIN_ATTEMPT_SECONDS, Deadline
from parley.ai.errors import ModelRefused
from parley.ai.types import AiAnswer, AiProvider, AiRequest, Turn
from parley.analysis import offline as _offline  # noqa: F401 - registers the offline engine's analysis answer
from parley.analysis import prompt
from parley.analysis.metrics import Measurements
from parley.analysis.report import (
    MAX_CORRECTIONS,
    MAX_VOCABULARY,
    AnalysisReport,
    DimensionScore,
    Evidence,
    JudgeAnswer,
    JudgedScore,
    JudgedScores,
    QuoteCheck,
    ReportCorrection,
    Scores,
    VocabularyTip,
    judge_schema,
)
from parley.core.errors import InvalidModelOutput
from parley.core.ids import iso_micros, utcnow

# The largest valid answer (every line at its 300-character limit, 10 corrections, 8 tips, 3 items
# to practise) is 19,409 characters of JSON: about 4,850 tokens of English at 4 characters a token,
# at most about 6,500 at 3. The seed's 1,500 would cut a long report short; 8,192 fits the largest
# valid answer, and a longer one is invalid anyway. It is a cap, not a charge: a typical report is
# 1,000-1,500 tokens.
MAX_TOKENS = 8192
TEMPERATURE = 0.2
MAX_CONVERSATION_CHARS = 24_000  # the newest turns that fit; quotes are checked against all of them
NOT_MEASURED = "Not measured: no recorded speech in this session."
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})
_SPACES = re.compile(r"\s+")
_ENDS = " \t\n.,!?;:\"'()[]…-"


@dataclass(frozen=True)
class Conversation:
    """A session's conversation: every turn in order, and the learner's own messages."""

    turns: tuple[tuple[str, str], ...]  # (role, text): role "user" is the learner
    level: str | None = None
    topic: str | None = None

    @property
    def learner(self) -> list[str]:
        return [text for role, text in self.turns if role == "user"]


def normalise(text: str) -> str:
    return _SPACES.sub(" ", text.translate(_QUOTES)).strip().lower()


def _same_text(a: str, b: str) -> bool:
    return _SPACES.sub(" ", a.translate(_QUOTES)).strip() == _SPACES.sub(" ", b.translate(_QUOTES)).strip()


def is_learners(quote: str, learner_messages: Sequence[str]) -> bool:
    """Whether ``quote`` really occurs in one of the learner's messages (see the module docstring)."""
    wanted = normalise(quote).strip(_ENDS)
    if not wanted:
        return False
    # Whole words only: "i" must not be "found" inside "like".
    pattern = re.compile(rf"(?<!\w){re.escape(wanted)}(?!\w)")
    return any(pattern.search(normalise(message)) for message in learner_messages)


def _conversation_payload(conversation: Conversation) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    learner_turn = 0
    for role, text in conversation.turns:
        if role == "user":
            learner_turn += 1
            items.append({"speaker": "learner", "turn": learner_turn, "text": text})
        else:
            items.append({"speaker": "tutor", "text": text})
    kept: list[dict[str, Any]] = []
    size = 0
    for item in reversed(items):  # keep the newest turns that fit the budget
        size += len(item["text"]) + 40
        if size > MAX_CONVERSATION_CHARS and kept:
            break
        kept.append(item)
    return list(reversed(kept))


def _json_text(text: str) -> str:
    """The JSON object in an answer: code fences and prose around it are tolerated."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("the answer contains no JSON object")
    return text[start:end + 1]


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:6]]
        return "; ".join(parts)
    return str(exc)


def parse_answer(text: str, *, speech: bool) -> JudgeAnswer:
    """Validate the model's answer; raises ValueError/ValidationError with what is wrong."""
    answer = JudgeAnswer.model_validate_json(_json_text(text))
    if speech and answer.scores.pronunciation.score is None:
        raise ValueError("scores.pronunciation.score is required: speech metrics are present")
    return answer


def _evidence(measurements: Measurements, corrections: int) -> dict[str, list[Evidence]]:
    text, speech = measurements.text, measurements.speech
    found: dict[str, list[Evidence]] = {"complexity": [], "accuracy": [], "fluency": [], "pronunciation": []}
    if text is not None:
        found["complexity"].append(Evidence(metric="text.meanLengthOfTurn", label="words per turn",
                                            value=text.mean_length_of_turn))
        if text.mtld is not None:
            label = "lexical diversity (MTLD)" + ("" if text.mtld_reliable else ", under 100 words: indicative")
            found["complexity"].append(Evidence(metric="text.mtld", label=label, value=text.mtld))
        if text.type_token_ratio is not None:
            found["complexity"].append(Evidence(metric="text.typeTokenRatio", label="distinct words / words",
                                                value=text.type_token_ratio))
        found["accuracy"].append(Evidence(metric="corrections", label="errors quoted from your own words",
                                          value=corrections))
        if text.learner_words:
            found["accuracy"].append(Evidence(metric="correctionsPer100Words", label="errors per 100 words",
                                              value=round(100 * corrections / text.learner_words, 2)))
        found["fluency"].append(Evidence(metric="text.fillersPer100Words", label="filler words per 100 words",
                                         value=text.fillers_per_100_words))
    grammar = measurements.grammar
    if grammar is not None:  # measured accuracy, beside the judge's: quotes in measurements.grammar.evidence
        found["accuracy"] += [
            Evidence(metric="grammar.issuesPer100Words",
                     label=f"grammar and word errors per 100 words, measured ({grammar.checker})",
                     value=grammar.issues_per_100_words),
            Evidence(metric="grammar.issues", label="grammar and word errors found in your English turns",
                     value=grammar.issues),
        ]
    if speech is not None:
        found["fluency"] += [
            Evidence(metric="speech.wordsPerMinute", label="speech rate (words per minute)",
                     value=speech.words_per_minute),
            Evidence(metric="speech.pauses", label=f"pauses of {speech.pause_threshold_seconds:g} s or more",
                     value=speech.pauses),
            Evidence(metric="speech.longPauses", label="pauses longer than 1 s", value=speech.long_pauses),
        ]
        if speech.mean_confidence is not None:
            found["pronunciation"].append(Evidence(
                metric="speech.meanConfidence",
                label="mean recognition confidence (a proxy for intelligibility, not a pronunciation test)",
                value=speech.mean_confidence))
        if speech.low_confidence_share is not None:
            found["pronunciation"].append(Evidence(metric="speech.lowConfidenceShare",
                                                   label="share of words heard with confidence < 0.6",
                                                   value=speech.low_confidence_share))
    return found


def _dimension(judged: JudgedScore, evidence: list[Evidence]) -> DimensionScore:
    return DimensionScore(score=judged.score, reason=judged.reason, measured=bool(evidence), evidence=evidence)


def assemble(answer: JudgeAnswer, conversation: Conversation, measurements: Measurements, *,
             final: AiAnswer, attempts: int) -> AnalysisReport:
    """The learner's report: quotes verified, pronunciation gated on speech, evidence attached."""
    learner = conversation.learner
    checked = dropped = 0
    corrections: list[ReportCorrection] = []
    for correction in answer.corrections:
        checked += 1
        if not is_learners(correction.original, learner):
            dropped += 1
            continue
        if _same_text(correction.original, correction.corrected):
            continue  # not a correction (a capital letter is one: the comparison keeps case)
        corrections.append(correction)
    vocabulary: list[VocabularyTip] = []
    for tip in answer.better_vocabulary:
        if tip.instead_of is not None:
            checked += 1
            if not is_learners(tip.instead_of, learner):
                dropped += 1
                continue
        vocabulary.append(tip)

    evidence = _evidence(measurements, len(corrections))
    speech_measured = measurements.speech is not None and measurements.speech.mean_confidence is not None
    pronunciation = (_dimension(answer.scores.pronunciation, evidence["pronunciation"]) if speech_measured
                     else DimensionScore(score=None, reason=NOT_MEASURED, measured=False, evidence=[]))
    return AnalysisReport(
        scores=Scores(
            complexity=_dimension(answer.scores.complexity, evidence["complexity"]),
            accuracy=_dimension(answer.scores.accuracy, evidence["accuracy"]),
            fluency=_dimension(answer.scores.fluency, evidence["fluency"]),
            pronunciation=pronunciation,
        ),
        cefr=answer.cefr, corrections=corrections, better_vocabulary=vocabulary,
        practise_next=list(answer.practise_next), measurements=measurements,
        quote_check=QuoteCheck(checked=checked, dropped=dropped),
        engine=final.engine, model=final.model, attempts=attempts, generated_at=iso_micros(utcnow()),
    )


def largest_valid_answer() -> str:
    """The longest answer ``JudgeAnswer`` accepts, as JSON (what ``MAX_TOKENS`` must fit)."""
    line = "x" * 300
    score = JudgedScore(score=10, reason=line)
    answer = JudgeAnswer(
        scores=JudgedScores(complexity=score, accuracy=score, fluency=score, pronunciation=score), cefr="C2",
        corrections=[ReportCorrection(original=line, corrected=line, why=line)] * MAX_CORRECTIONS,
        better_vocabulary=[VocabularyTip(instead_of=line, suggestion=line, why=line)] * MAX_VOCABULARY,
        practise_next=[line] * 3)
    return answer_json(answer)


def _checked(answer: AiAnswer, *, speech: bool) -> tuple[JudgeAnswer | None, str]:
    """The valid answer, or None and what is wrong with it."""
    if answer.refused:
        raise ModelRefused("The model declined to assess this conversation; nothing was saved.",
                           details=[{"engine": answer.engine, "reason": answer.refusal or "refusal"}])
    if answer.truncated:
        return None, f"the answer was cut off at the length limit ({answer.stop_reason})"
    try:
        return parse_answer(answer.final_text, speech=speech), ""
    except (ValueError, ValidationError) as exc:
        return None, _problem(exc)


class Judge:
    def __init__(self, provider: AiProvider, *, max_tokens: int = MAX_TOKENS,
                 deadline: Deadline | None = None) -> None:
        self.provider = provider
        self.max_tokens = max_tokens
        self.deadline = deadline

    def request(self, conversation: Conversation, measurements: Measurements) -> AiRequest:
        message = prompt.user_message(
            level=conversation.level, topic=conversation.topic,
            measurements=measurements.model_dump(mode="json", by_alias=True),
            conversation=_conversation_payload(conversation))
        return AiRequest(system=(prompt.system_prompt(),), messages=(Turn("user", message),),
                         purpose="analysis", max_tokens=self.max_tokens, temperature=TEMPERATURE,
                         json_schema=judge_schema(), deadline=self.deadline)

    def judge(self, conversation: Conversation, measurements: Measurements) -> AnalysisReport:
        speech = measurements.speech is not None and measurements.speech.mean_confidence is not None
        request = self.request(conversation, measurements)
        answer = self.provider.complete(request)
        parsed, problem = _checked(answer, speech=speech)
        attempts = 1
        if parsed is None:
            if self.deadline is not None and self.deadline.remaining() < MIN_ATTEMPT_SECONDS:
                raise InvalidModelOutput(f"The model's report was invalid ({problem[:300]}) and there is no "
                                         "time left in this step to ask again.")
            if answer.truncated:  # a cut answer is not worth sending back: ask again, shorter
                follow_up: tuple[Turn, ...] = (Turn("assistant", "(my report was cut off)"),
                                               Turn("user", prompt.TRUNCATED))
            else:
                follow_up = (Turn("assistant", answer.final_text.strip()[:6000] or "(empty answer)"),
                             Turn("user", prompt.retry_message(problem)))
            answer = self.provider.complete(replace(request, messages=(*request.messages, *follow_up)))
            attempts = 2
            parsed, second = _checked(answer, speech=speech)
            if parsed is None:
                raise InvalidModelOutput(
                    f"The model's report was invalid twice. First: {problem[:300]}. Second: {second[:300]}.")
        return assemble(parsed, conversation, measurements, final=answer, attempts=attempts)


def answer_json(answer: JudgeAnswer) -> str:
    return json.dumps(answer.model_dump(mode="json", by_alias=True))
