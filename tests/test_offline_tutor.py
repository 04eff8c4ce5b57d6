"""The offline engine's tutor: replies read like a tutor's - on the topic and at the level of the
session's settings, a recast of a slip, a new question each turn - and never echo the learner."""

from __future__ import annotations

import re

import pytest

from parley.ai.offline import QUESTIONS, OfflineProvider
from parley.ai.types import AiRequest, Turn
from parley.tutor.persona import TutorPersona, system_prompt

FRAGMENTS = ["should", "I think I should practise more", "yesterday", "and", "the market"]


def reply(topic: str, level: str, learner: list[str]) -> str:
    persona = TutorPersona(tutor_name="Emma", accent="US", level=level, topic=topic)  # type: ignore[arg-type]
    turns: list[Turn] = []
    for text in learner:
        turns += [Turn("user", text), Turn("assistant", "OK.")]
    request = AiRequest(system=system_prompt(persona), messages=tuple(turns[:-1]), purpose="chat")
    return OfflineProvider().complete(request).text


@pytest.mark.parametrize("topic", sorted(QUESTIONS))
@pytest.mark.parametrize("level", ["beginner", "intermediate", "advanced"])
def test_the_question_is_on_the_topic_and_at_the_level(topic: str, level: str) -> None:
    answer = reply(topic, level, ["I like it."])
    assert any(question in answer for question in QUESTIONS[topic][level])
    assert answer.count("?") <= 1 and len(answer) < 240  # one question (or an interviewer's "Tell me...")


def test_each_turn_asks_something_new_and_the_same_turn_the_same_thing() -> None:
    learner = ["I get up at seven.", "I eat rice.", "I go to work by bus."]
    answers = [reply("daily", "beginner", learner[:n]) for n in range(1, 4)]
    assert len({a.split(". ")[-1] for a in answers}) == 3
    assert answers == [reply("daily", "beginner", learner[:n]) for n in range(1, 4)]  # deterministic


@pytest.mark.parametrize("message", [*FRAGMENTS, "Should I should go?", "I should."])
def test_the_learners_words_are_never_asked_back(message: str) -> None:
    answer = reply("travel", "intermediate", [message])
    assert "tell me more about" not in answer.lower()
    question = re.split(r"(?<=[.!?\"])\s+", answer)[-1]
    for word in re.findall(r"[a-z']+", message.lower()):
        if len(word) > 4:
            assert word not in question.lower()


def test_a_slip_is_recast_for_learners_below_advanced() -> None:
    answer = reply("daily", "intermediate", ["She have a apple every day."])
    assert "She has an apple every day." in answer
    assert "have a apple" not in reply("daily", "advanced", ["She have a apple every day."])
