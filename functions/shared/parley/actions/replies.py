"""The replies of the action API: the original backend's shapes, with Parley's fuller objects beside them."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from parley.analysis.report import DIMENSIONS, AnalysisReport
from parley.core.models import ApiModel
from parley.speech.transcription.models import TranscriptionOut
from parley.speech.voices import SpeechOut
from parley.tutor.chat import ChatUsage
from parley.tutor.models import Accent, Gender, Level, Message, Role, Session, Settings, SpeechRate, Topic


class ActionChatReply(ApiModel):
    message: str = Field(description="The tutor's reply")
    translation: str | None = Field(None, description=(
        "The reply in the learner's nativeLanguage when their showTranslation setting is on and the engine could "
        "translate it; else null"))
    role: Literal["assistant"] = "assistant"
    engine: str | None
    model: str | None
    fallback_from: str | None = None
    usage: ChatUsage
    history_truncated: bool


class ActionTranscript(ApiModel):
    success: bool = Field(description="True when the transcript is here; false while it is still running")
    transcript: str | None = Field(None, description="The text (when status is completed)")
    status: Literal["queued", "running", "completed"]
    transcription_id: str
    poll: str | None = Field(None, description="While not completed: GET this for the result")
    transcription: TranscriptionOut


class ActionFillers(BaseModel):
    count: int
    words: list[str]
    percentage: float


class ActionCorrection(BaseModel):
    original: str
    corrected: str
    explanation: str


class ActionVocabulary(BaseModel):
    total_words: int
    unique_words: int
    advanced_words: list[str]
    suggested_words: list[str]


class ActionAnalysis(BaseModel):
    """The original tutor backend's analysis object (snake_case keys, scores 0-100)."""

    model_config = ConfigDict(defer_build=True)

    cafp_scores: dict[str, int | None] = Field(description="Parley's 1-10 scores x 10; pronunciation is null "
                                                           "when the session has no recordings")
    fillers: ActionFillers
    grammar_corrections: list[ActionCorrection]
    vocabulary: ActionVocabulary
    overall_feedback: str
    improvement_tips: list[str]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)


class StoredFillers(_Camel, ActionFillers):
    pass


class StoredCorrection(_Camel, ActionCorrection):
    pass


class StoredVocabulary(_Camel, ActionVocabulary):
    pass


class ActionStoredAnalysis(_Camel):
    """The analysis as ``get_session_detail`` shows it: the same content as ``analyze``'s, with
    camelCase keys at every level, as the rest of that answer (``analyze`` keeps the original
    backend's snake_case object)."""

    cafp_scores: dict[str, int | None]
    fillers: StoredFillers
    grammar_corrections: list[StoredCorrection]
    vocabulary: StoredVocabulary
    overall_feedback: str
    improvement_tips: list[str]


class ActionAnalysisReply(ApiModel):
    success: bool = Field(description="True when the analysis is here; false while it is still running")
    status: Literal["running", "completed"]
    session_id: str = Field(description="The analysed session (the client's id when it gave one)")
    analysis: ActionAnalysis | None = None
    poll: str | None = Field(None, description="While running: GET this for the result")
    report: AnalysisReport | None = Field(None, description="Parley's full report (evidence, CEFR, measurements)")


class ActionSettingsOut(ApiModel):
    """The saved settings under the original backend's keys (``speed``), in the spellings every route answers."""

    accent: Accent
    gender: Gender
    speed: SpeechRate
    level: Level
    topic: Topic
    tutor_name: str

    @classmethod
    def of(cls, saved: Settings) -> ActionSettingsOut:
        return cls(accent=saved.accent, gender=saved.gender, speed=saved.speech_rate, level=saved.level,
                   topic=saved.topic, tutor_name=saved.tutor_name)


class ActionSettingsReply(ApiModel):
    success: bool = True
    settings: ActionSettingsOut
    is_default: bool = Field(description="True when nothing was saved yet (these are the defaults)")
    updated_at: str | None


class ActionSessionReply(ApiModel):
    """start_session and end_session: the session (the one shape every route answers), and the
    original backend's top-level keys."""

    success: bool = True
    session_id: str = Field(description="The id the request named (the client's own, when it gave one)")
    started_at: str
    ended_at: str | None = None
    session: Session


class ActionMessageReply(ApiModel):
    success: bool = True
    message_id: str
    message: Message


class ActionSessionsReply(ApiModel):
    sessions: list[Session] = Field(description="Newest first; the same session object as GET /sessions")
    has_more: bool
    last_key: str | None = Field(None, description="Send back as lastKey for the next page")


class ActionMessageOut(ApiModel):
    message_id: str
    role: Role
    content: str
    translation: str | None
    timestamp: str
    turn_number: int


class ActionSessionDetailReply(ApiModel):
    session: Session
    messages: list[ActionMessageOut]
    analysis: ActionStoredAnalysis | None = Field(None, description="The completed analysis, if any")


class ActionDeleteReply(ApiModel):
    success: bool = True
    deleted_count: int


class ActionTranscribeUrlReply(ApiModel):
    url: str
    expires_in: int = Field(description="Seconds the URL is valid")
    expires_at: str
    language_code: str
    media_encoding: str
    sample_rate: int


ActionReply = (ActionChatReply | SpeechOut | ActionTranscript | ActionAnalysisReply | ActionSettingsReply
               | ActionSessionReply | ActionMessageReply | ActionSessionsReply | ActionSessionDetailReply
               | ActionDeleteReply | ActionTranscribeUrlReply)


# -- mapping Parley's results to the seed's shapes ---------------------------------------------
AnalysisShape = TypeVar("AnalysisShape", ActionAnalysis, ActionStoredAnalysis)


def seed_analysis(report: AnalysisReport, model: type[AnalysisShape] = ActionAnalysis) -> AnalysisShape:  # type: ignore[assignment]
    text = report.measurements.text
    words = text.learner_words if text else 0
    filler_words = [w for w, n in sorted((text.filler_breakdown if text else {}).items()) for _ in range(n)]
    reasons = " ".join(getattr(report.scores, d).reason for d in DIMENSIONS if getattr(report.scores, d).score)
    return model.model_validate({
        "cafp_scores": {d: None if (s := getattr(report.scores, d).score) is None else s * 10 for d in DIMENSIONS},
        "fillers": {"count": len(filler_words), "words": filler_words,
                    "percentage": round(len(filler_words) / max(words, 1) * 100, 1)},
        "grammar_corrections": [{"original": c.original, "corrected": c.corrected, "explanation": c.why}
                                for c in report.corrections],
        "vocabulary": {"total_words": words,
                       "unique_words": round((text.type_token_ratio or 0) * words) if text else 0,
                       "advanced_words": [], "suggested_words": [tip.suggestion for tip in report.better_vocabulary]},
        "overall_feedback": f"Estimated level: CEFR {report.cefr}. {reasons}".strip(),
        "improvement_tips": list(report.practise_next),
    })

