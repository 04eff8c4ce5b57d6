"""Harper (parley.ai.grammar): English errors at the right offsets, Korean never sent to it, its findings
as the offline proofreader's corrections, and the analysis report's measured accuracy quoting the learner."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_stack.lambdas import FunctionRunner
from local_stack.workflows import Workflows
from parley.ai import grammar
from parley.proofreading.models import ModelCorrection
from parley.proofreading.offline_rules import rule_corrections
from parley.proofreading.offsets import place
from tests.test_analysis_workflow import api, aws, emulated, make_session, run_analysis, workflows

__all__ = ["api", "aws", "emulated", "workflows"]  # the analysis workflow module's fixtures, reused


def test_known_english_errors_come_back_at_their_code_point_offsets() -> None:
    text = "😀 She have a apple. Their is a problem and and it was more better."
    found = {(i.start, i.end, i.kind, i.replacement) for i in grammar.check(text)}
    for start, end, _kind, _replacement in found:
        assert text[start:end]  # every span lies inside the text
    assert (6, 10, "Agreement", "has") in found  # "have", after a 1-code-point emoji and a space
    assert (11, 12, "Miscellaneous", "an") in found  # "a apple"
    assert (text.index("Their"), text.index("Their") + 5, "Grammar", "There") in found
    assert (text.index("and and"), text.index("and and") + 7, "Repetition", "and") in found
    assert (text.index("more better"), text.index("more better") + 11, "Redundancy", "better") in found


def test_korean_text_never_reaches_harper(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real, lock = grammar.linter("US")

    class Recording:
        def lint(self, text: str, **options: Any) -> Any:
            seen.append(text)
            return real.lint(text, **options)

    monkeypatch.setattr(grammar, "linter", lambda dialect="US": (Recording(), lock))
    assert grammar.check("나는 학생 입니다. 그것은 좋은것같다!") == []
    assert seen == []  # nothing was linted at all
    mixed = "나는 할수있다. She have a apple. 정말 정말 좋다. He go home."
    issues = grammar.check(mixed)
    assert seen and not any(any("\uac00" <= ch <= "\ud7af" for ch in text) for text in seen)
    assert {mixed[i.start:i.end] for i in issues} >= {"have", "go"}
    assert all(grammar.is_english(mixed[i.start:i.end]) for i in issues)


def test_the_offline_proofreader_places_harpers_corrections_like_a_models() -> None:
    text = "오늘은  날씨가 좋다. 😀 She have a apple."
    placement = place(text, [ModelCorrection.model_validate(c) for c in rule_corrections(text)])
    assert placement.corrected_text == "오늘은 날씨가 좋다. 😀 She has an apple."
    have = next(c for c in placement.corrections if c.original == "have")
    assert (have.category, have.utf16_offset) == ("grammar", have.offset + 1)  # the emoji is two UTF-16 units
    assert (placement.repaired, placement.dropped) == (0, 0)


def test_the_analysis_report_measures_accuracy_with_spans_quoting_the_learner(
        api: Any, workflows: Workflows, runner: FunctionRunner) -> None:
    learner = ["She have a apple and she like it very much.", "나는 학생입니다. 한국어로 말했어요.",
               "Yesterday we goes to the park and and played football."]
    session_id = make_session(api, learner)
    result, status = run_analysis(api, workflows, session_id)  # the offline engine judges
    assert result.status == "SUCCEEDED", result
    report = status.json()["report"]
    grammar_metrics = report["measurements"]["grammar"]
    assert grammar_metrics["checker"] == "harper" and grammar_metrics["englishTurns"] == 2
    assert grammar_metrics["issues"] >= 3 and grammar_metrics["issuesPer100Words"] > 0
    for evidence in grammar_metrics["evidence"]:
        turn = learner[evidence["turn"] - 1]
        assert turn[evidence["start"]:evidence["end"]] == evidence["quote"]  # the learner's own words
        assert evidence["turn"] != 2  # the Korean turn is not checked
    assert {e["quote"] for e in grammar_metrics["evidence"]} >= {"have", "goes", "and and"}
    accuracy = report["scores"]["accuracy"]
    measured = {e["metric"]: e["value"] for e in accuracy["evidence"]}
    assert measured["grammar.issuesPer100Words"] == grammar_metrics["issuesPer100Words"]
    assert accuracy["measured"] is True and 1 <= accuracy["score"] <= 10
    assert json.dumps(report)  # the whole report is plain JSON
