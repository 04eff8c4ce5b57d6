"""The judge: structured output validated, one retry on invalid output, every quote checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from parley.ai.deadline import Deadline
from parley.ai.errors import ModelRefused
from parley.ai.offline import OfflineProvider
from parley.ai.types import AiAnswer, AiRequest, TokenUsage
from parley.analysis import prompt
from parley.analysis.judge import MAX_TOKENS, NOT_MEASURED, Conversation, Judge, is_learners, largest_valid_answer
from parley.analysis.metrics import SpokenWord, measure
from parley.core.errors import InvalidModelOutput

CONVERSATION = Conversation(turns=(
    ("assistant", "Hi! What did you do at the weekend?"),
    ("user", "I go to the market yesterday and i bought a lot of apples."),
    ("assistant", "Lovely! Did you buy anything else at the market?"),
    ("user", "Yes, I didn't went to the bakery because it was very big queue."),
    ("assistant", "Oh no. Was the weather nice?"),
    ("user", "The weather was very good, more better than last week."),
), level="intermediate", topic="daily")
SPEECH = [[SpokenWord("I", 0.0, 0.2, 0.95), SpokenWord("go", 0.3, 0.5, 0.7), SpokenWord("market", 1.9, 2.4, 0.5)]]


def valid_answer(**overrides: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "scores": {
            "complexity": {"score": 5, "reason": "Short, simple sentences."},
            "accuracy": {"score": 4, "reason": "Several tense errors."},
            "fluency": {"score": 6, "reason": "Steady pace."},
            "pronunciation": {"score": 6, "reason": "Mostly clear."},
        },
        "cefr": "B1",
        "corrections": [{"original": "I go to the market yesterday", "corrected": "I went to the market yesterday",
                         "why": "Past time needs the past tense."}],
        "betterVocabulary": [{"insteadOf": "very good", "suggestion": "lovely", "why": "More natural."}],
        "practiseNext": ["Past simple", "Comparatives", "Linking words"],
    }
    answer.update(overrides)
    return answer


class Scripted:
    """A provider that answers from a script: text, a whole answer, or an exception to raise."""

    engine = "bedrock"
    model = "global.anthropic.claude-haiku-4-5-20251001-v1:0"

    def __init__(self, *answers: str | AiAnswer | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[AiRequest] = []

    def complete(self, request: AiRequest) -> AiAnswer:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, AiAnswer):
            return answer
        return AiAnswer(text=answer, engine="bedrock", model=self.model, usage=TokenUsage(100, 50))

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        yield self.complete(request)


def test_a_valid_answer_becomes_a_report_with_measured_evidence() -> None:
    provider = Scripted(json.dumps(valid_answer()))
    report = Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))

    assert (report.attempts, report.cefr, report.scores.accuracy.score) == (1, "B1", 4)
    assert [c.original for c in report.corrections] == ["I go to the market yesterday"]
    assert report.quote_check.model_dump() == {"checked": 2, "dropped": 0}
    assert report.scores.pronunciation.score == 6 and report.scores.pronunciation.measured
    assert {e.metric for e in report.scores.pronunciation.evidence} == {"speech.meanConfidence",
                                                                       "speech.lowConfidenceShare"}
    assert {e.metric for e in report.scores.fluency.evidence} >= {"speech.wordsPerMinute", "speech.pauses"}
    accuracy = {e.metric: e.value for e in report.scores.accuracy.evidence}
    assert accuracy["corrections"] == 1
    # The request: a cap that fits the largest valid report, the schema attached once (not in the
    # prompt), the learner's words not in system
    request = provider.requests[0]
    assert (request.max_tokens, request.purpose, request.json_schema is not None) == (8192, "analysis", True)
    assert '"properties"' not in request.system[0] and "schema" not in request.system[0].lower()
    assert "bakery" not in request.system[0] and "bakery" in request.messages[0].text


def test_the_cap_fits_the_largest_valid_report() -> None:
    largest = largest_valid_answer()
    assert len(largest) == 19_409
    assert len(largest) / 3 <= MAX_TOKENS  # even at 3 characters a token (English runs nearer 4)
    assert MAX_TOKENS > 1500 * 3  # the seed's 1,500 would cut it short


def cut(text: str = '{"scores": {"complexity": {"score": 5, "reason": "Short') -> AiAnswer:
    return AiAnswer(text=text, engine="bedrock", model=Scripted.model, usage=TokenUsage(900, 8192),
                    stop_reason="max_tokens")


def test_an_answer_cut_at_max_tokens_is_asked_for_again_without_resending_the_cut_text() -> None:
    provider = Scripted(cut(), json.dumps(valid_answer()))
    report = Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))

    assert report.attempts == 2
    retry = provider.requests[1]
    assert [t.role for t in retry.messages] == ["user", "assistant", "user"]
    assert retry.messages[-1].text == prompt.TRUNCATED and "Short" not in retry.messages[1].text
    assert retry.max_tokens == MAX_TOKENS


def test_a_cut_answer_that_happens_to_parse_is_still_not_taken_as_whole() -> None:
    provider = Scripted(cut(json.dumps(valid_answer())), json.dumps(valid_answer(cefr="B2")))
    report = Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))
    assert (report.attempts, report.cefr) == (2, "B2")


def test_cut_twice_is_invalid_output_saying_so() -> None:
    provider = Scripted(cut(), cut())
    with pytest.raises(InvalidModelOutput, match="cut off"):
        Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))
    assert len(provider.requests) == 2


def test_a_refusal_is_one_call_and_a_clear_error() -> None:
    refused = AiAnswer(text="", engine="anthropic", model="claude-haiku-4-5", usage=TokenUsage(900, 3),
                       stop_reason="refusal", refusal="general_harms")
    provider = Scripted(refused, json.dumps(valid_answer()))
    with pytest.raises(ModelRefused) as caught:
        Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))
    assert len(provider.requests) == 1 and caught.value.status == 422 and caught.value.code == "AI_REFUSED"


def test_no_retry_when_the_steps_time_is_spent() -> None:
    now = [0.0]
    deadline = Deadline(100.0, clock=lambda: now[0])

    class Slow(Scripted):
        def complete(self, request: AiRequest) -> AiAnswer:
            assert request.deadline is deadline  # the calls carry the step's deadline
            now[0] = 99.0  # the first answer took (almost) all of it
            return super().complete(request)

    provider = Slow("not json", json.dumps(valid_answer()))
    with pytest.raises(InvalidModelOutput, match="no time left"):
        Judge(provider, deadline=deadline).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))
    assert len(provider.requests) == 1


def test_invalid_output_gets_one_retry_that_names_the_problem() -> None:
    provider = Scripted("Sure! Here is the analysis: the learner did well.", json.dumps(valid_answer()))
    report = Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))

    assert report.attempts == 2
    retry = provider.requests[1]
    assert [t.role for t in retry.messages] == ["user", "assistant", "user"]
    assert "no JSON object" in retry.messages[-1].text


@pytest.mark.parametrize("bad", [
    json.dumps(valid_answer(cefr="D1")),
    json.dumps(valid_answer(practiseNext=["only one"])),
    json.dumps({**valid_answer(), "scores": {**valid_answer()["scores"], "accuracy": {"score": 11, "reason": "x"}}}),
    json.dumps({**valid_answer(), "scores": {**valid_answer()["scores"], "fluency": {"score": None, "reason": "x"}}}),
    "{truncated",
])
def test_invalid_twice_raises_a_named_error(bad: str) -> None:
    provider = Scripted(bad, bad)
    with pytest.raises(InvalidModelOutput, match="invalid twice"):
        Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))
    assert len(provider.requests) == 2


def test_pronunciation_without_a_score_is_invalid_when_speech_was_measured() -> None:
    unscored = valid_answer()
    unscored["scores"]["pronunciation"] = {"score": None, "reason": "n/a"}
    provider = Scripted(json.dumps(unscored), json.dumps(valid_answer()))
    assert Judge(provider).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH)).attempts == 2


def test_a_quote_not_in_the_learners_words_is_dropped_never_shown_as_theirs() -> None:
    answer = valid_answer(
        corrections=[
            {"original": "I go to the market yesterday", "corrected": "I went…", "why": "tense"},
            {"original": "Did you buy anything else", "corrected": "x", "why": "the tutor's words"},
            {"original": "I goed to the shop", "corrected": "I went to the shop", "why": "invented"},
            {"original": "  I DIDN'T   went to the bakery. ", "corrected": "I didn't go to the bakery", "why": "ok"},
        ],
        betterVocabulary=[{"insteadOf": "enormous queue", "suggestion": "long queue", "why": "invented"},
                          {"insteadOf": None, "suggestion": "queue up", "why": "a phrase to learn"}],
    )
    report = Judge(Scripted(json.dumps(answer))).judge(CONVERSATION, measure(CONVERSATION.learner, []))

    assert [c.original for c in report.corrections] == ["I go to the market yesterday",
                                                        "I DIDN'T   went to the bakery."]
    assert [t.suggestion for t in report.better_vocabulary] == ["queue up"]
    assert report.quote_check.model_dump() == {"checked": 5, "dropped": 3}


@pytest.mark.parametrize(("quote", "found"), [
    ("i bought a lot", True),           # case-insensitive
    ("I  bought\na lot", True),         # whitespace runs
    ("\u201cvery good,\u201d", True),   # curly quotes and end punctuation
    ("didn\u2019t went", True),         # curly apostrophe
    ("i", True),                        # a whole word "i" is there ("and i bought")
    ("ark", False),                     # inside "market": not a whole word
    ("weekend", False),                 # the tutor said it, not the learner
    ("apples. yes", False),             # spans two of the learner's messages
    ("", False),
])
def test_quote_matching(quote: str, found: bool) -> None:
    assert is_learners(quote, CONVERSATION.learner) is found


def test_pronunciation_is_not_measured_without_transcripts_whatever_the_model_says() -> None:
    report = Judge(Scripted(json.dumps(valid_answer()))).judge(CONVERSATION, measure(CONVERSATION.learner, []))
    assert report.scores.pronunciation.model_dump() == {"score": None, "reason": NOT_MEASURED, "measured": False,
                                                        "evidence": []}
    assert report.measurements.speech is None


def test_the_offline_engine_answers_a_valid_report_quoting_the_learner() -> None:
    report = Judge(OfflineProvider()).judge(CONVERSATION, measure(CONVERSATION.learner, SPEECH))

    assert report.attempts == 1 and report.engine == "offline"
    assert report.quote_check.dropped == 0
    originals = {c.original for c in report.corrections}
    assert {"i bought", "didn't went", "more better"} <= originals
    assert all(is_learners(c.original, CONVERSATION.learner) for c in report.corrections)
    assert report.scores.pronunciation.score is not None
