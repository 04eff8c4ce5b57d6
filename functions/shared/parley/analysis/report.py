"""The CAFP report: what the model must answer (``JudgeAnswer``) and what the learner gets
(``AnalysisReport``: the judged scores, each with the measured evidence behind it).

The judge's answer is validated by ``JudgeAnswer``; anything else (prose around the JSON, a score
of 11, two practice items instead of three) is invalid output and is asked for once more.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from parley.analysis.metrics import Measurements
from parley.core.models import ApiModel

Cefr = Literal["A1", "A2", "B1", "B2", "C1", "C2"]
Dimension = Literal["complexity", "accuracy", "fluency", "pronunciation"]
DIMENSIONS: tuple[Dimension, ...] = ("complexity", "accuracy", "fluency", "pronunciation")
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Quote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
MAX_CORRECTIONS = 10
MAX_VOCABULARY = 8


class _Judged(BaseModel):
    """Lenient about extra keys (models add them), strict about everything that is there."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class JudgedScore(_Judged):
    score: int | None = Field(ge=1, le=10, description="1 (very weak) to 10 (native-like); null only for "
                                                       "pronunciation when no speech was recorded.")
    reason: Line = Field(description="One line: why this score, pointing at the evidence.")


class JudgedScores(_Judged):
    complexity: JudgedScore
    accuracy: JudgedScore
    fluency: JudgedScore
    pronunciation: JudgedScore

    @model_validator(mode="after")
    def _scored(self) -> JudgedScores:
        for name in ("complexity", "accuracy", "fluency"):
            if getattr(self, name).score is None:
                raise ValueError(f"{name}.score is required (1-10)")
        return self


class ReportCorrection(_Judged):
    original: Quote = Field(description="The learner's exact words, copied character for character.")
    corrected: Quote
    why: Line


class VocabularyTip(_Judged):
    instead_of: Quote | None = Field(None, description="The learner's exact words it improves on, if any.")
    suggestion: Quote
    why: Line


class JudgeAnswer(_Judged):
    """The JSON object the model must answer with."""

    scores: JudgedScores
    cefr: Cefr = Field(description="CEFR estimate of the learner's level in this conversation.")
    corrections: list[ReportCorrection] = Field(max_length=MAX_CORRECTIONS)
    better_vocabulary: list[VocabularyTip] = Field(max_length=MAX_VOCABULARY)
    practise_next: list[Line] = Field(min_length=3, max_length=3, description="Exactly three things to practise.")


def judge_schema() -> dict[str, Any]:
    """The JSON schema the model is asked to follow (camelCase, as it must answer)."""
    return JudgeAnswer.model_json_schema(by_alias=True)


# -- what the learner gets ------------------------------------------------------------------------
class Evidence(ApiModel):
    metric: str = Field(description="The measured metric's name, as in ``measurements``.")
    label: str
    value: float | int | str


class DimensionScore(ApiModel):
    score: int | None = Field(description="1-10; null when not measured (pronunciation without speech).")
    reason: str
    measured: bool = Field(description="Whether measured evidence backs this score.")
    evidence: list[Evidence]


class Scores(ApiModel):
    complexity: DimensionScore
    accuracy: DimensionScore
    fluency: DimensionScore
    pronunciation: DimensionScore


class QuoteCheck(ApiModel):
    checked: int = Field(description="Quotes of the learner's words the model gave.")
    dropped: int = Field(description="Quotes not found in the learner's messages: removed, never shown as theirs.")


class AnalysisReport(ApiModel):
    scores: Scores
    cefr: Cefr
    corrections: list[ReportCorrection]
    better_vocabulary: list[VocabularyTip]
    practise_next: list[str]
    measurements: Measurements
    quote_check: QuoteCheck
    engine: str
    model: str
    attempts: int = Field(description="Model calls made: 1, or 2 when the first answer was invalid.")
    generated_at: str
