"""Seed 000's action envelope on ``POST /chat``: ``{"action": "...", ...}`` for its web, iOS and Android
clients, so that a team moving to Parley changes the base URL and its auth headers, nothing else.

Every action is answered by the same domain services as its resource route; this module only
translates the seed's request and response shapes (and waits for the two asynchronous workflows):

    action               resource route                               answer (the seed's shape)
    chat                 POST /chat (``messages``: explicit history)  message, translation, role
    tts                  POST /speech                                 audio, contentType, voice, engine
    stt                  POST /transcriptions + GET /transcriptions/{id}  transcript, success
    analyze              POST + GET /sessions/{id}/analysis           analysis{cafp_scores, ...}, success
    save_settings        PUT /settings                                success, settings, updatedAt
    get_settings         GET /settings                                settings, isDefault, updatedAt
    start_session        POST /sessions (clientSessionId)             success, sessionId, startedAt
    end_session          POST /sessions/{id}/end                      success, endedAt
    save_message         POST /sessions/{id}/messages                 success, messageId
    get_sessions         GET /sessions                                sessions, hasMore, lastKey
    get_session_detail   GET /sessions/{id} (+ its analysis)          session, messages, analysis
    delete_session       DELETE /sessions/{id}                        success, deletedCount
    get_transcribe_url   GET /transcriptions/stream-url               url, expiresIn

Rules (docs/migration.md says the same):

- The owner comes from the authorizer, as everywhere; ``deviceId``/``userId`` in the body are ignored.
- Requests are lenient about keys Parley does not use (the seed's clients send ``deviceId``,
  ``userId``, ``timestamp`` ...) and strict about the values of the keys it does use: a bad value is
  a 422 naming the field, never silently replaced by a default as the seed did.
- ``sessionId`` may be the client's own id (the seed's clients make a UUID and send it to
  ``start_session``; Parley keeps it as the session's ``clientSessionId``) or Parley's id.
- ``stt`` and ``analyze`` run Parley's workflows and wait for them within the request's time
  (``ENVELOPE_WAIT_SECONDS``, under API Gateway's 29 s); an unfinished one answers 202 with
  ``status`` and the id and resource to poll.
- An unknown action is a 400 ``UNKNOWN_ACTION`` naming the known ones; errors keep Parley's one
  error body.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic.alias_generators import to_camel

from parley.analysis.report import DIMENSIONS, AnalysisReport
from parley.analysis.service import Analyses, AnalysisStatus
from parley.core.errors import (
    BadRequest,
    NotEnoughToAnalyse,
    NotFound,
    ParleyError,
    QuotaExceeded,
    ServiceUnavailable,
    UnprocessableEntity,
)
from parley.core.ids import parse_iso, utcnow
from parley.core.observability import logger
from parley.speech.transcription.audio import AudioFormat, TranscribeLanguage
from parley.speech.transcription.models import CreateTranscription, StreamUrlOut, TranscriptionOut
from parley.speech.transcription.service import Transcriptions
from parley.speech.voices import MAX_TEXT_CHARS as MAX_SPEECH_CHARS
from parley.speech.voices import Speaker, SpeechOut, voice_settings
from parley.tutor.chat import MAX_HISTORY_MESSAGES, Chat, ChatRequest, ChatUsage
from parley.tutor.models import (
    MAX_MESSAGE_CHARS,
    Accent,
    ApiModel,
    ClientId,
    Gender,
    Level,
    Message,
    MessageText,
    NewMessage,
    Role,
    Session,
    Settings,
    SettingsOut,
    SpeechRate,
    StartSession,
    Topic,
    TutorName,
)
from parley.tutor.service import Tutor

# The seed's chat opened a call with this when the client sent no messages: the tutor greets first.
OPENING_MESSAGE = "Hello, let's start our English practice session."
# Pauses between reads while waiting for a workflow: quick at first (short recordings finish in a few
# seconds), then once a second. Each read is one strongly consistent GetItem.
WAIT_PAUSES = (0.5, 0.5, 1.0)
# analyze with messages only: how many of the owner's newest sessions are compared with them.
RECENT_SESSIONS_MATCHED = 3
# A session: Parley's id (a ULID) or the client's own (``clientSessionId``); both have this shape.
SessionRef = ClientId
T = TypeVar("T")


# -- requests: the seed's shapes ---------------------------------------------------------------
class _SeedIn(BaseModel):
    # extra="ignore": the seed's clients send keys Parley has no use for (deviceId, userId, timestamp).
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class SeedSettings(_SeedIn):
    """The seed's tutor settings. Every value is accepted in any letter case (the seed's clients send
    ``us``, ``Advanced``, ``Business``) and answered in Parley's one spelling (``US``, ``advanced``)."""

    accent: Accent | None = None
    gender: Gender | None = None
    speed: SpeechRate | None = None
    level: Level | None = None
    topic: Topic | None = None
    tutor_name: TutorName | None = Field(None, alias="tutorName")

    def overrides(self) -> dict[str, Any]:
        """The given values under Parley's ``Settings`` field names."""
        values = {"accent": self.accent, "gender": self.gender, "speech_rate": self.speed, "level": self.level,
                  "topic": self.topic, "tutor_name": self.tutor_name}
        return {k: v for k, v in values.items() if v is not None}


class SeedTurn(_SeedIn):
    """One message of a conversation; the seed's analysis also took ``speaker``/``en``."""

    role: Role
    content: MessageText

    @model_validator(mode="before")
    @classmethod
    def _seed_spellings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "role" not in data and "speaker" in data:
                data["role"] = data["speaker"]
            if "content" not in data and "en" in data:
                data["content"] = data["en"]
        return data


Turns = Annotated[list[SeedTurn], Field(max_length=MAX_HISTORY_MESSAGES + 1)]


class SeedMessageIn(_SeedIn):
    role: Role
    content: MessageText
    translation: Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)] | None = None
    turn_number: int | None = Field(None, alias="turnNumber", ge=0, le=100_000)
    message_id: ClientId | None = Field(None, alias="messageId")


class ChatAction(_SeedIn):
    action: Literal["chat"]
    messages: Turns = Field(default_factory=list, description="The whole conversation, oldest first; the last "
                                                              "message is the learner's new one.")
    settings: SeedSettings | None = None


class TtsAction(_SeedIn):
    action: Literal["tts"]
    text: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    settings: SeedSettings | None = None


class SttAction(_SeedIn):
    action: Literal["stt"]
    audio: str = Field(min_length=1, description="The recording, base64 (WebM from the browser, or Ogg/WAV/MP3/M4A)")
    language: TranscribeLanguage = "en-US"
    format: AudioFormat | None = None
    session_id: SessionRef | None = Field(None, alias="sessionId", description="Keep the transcript with this session")


class AnalyzeAction(_SeedIn):
    action: Literal["analyze"]
    session_id: SessionRef | None = Field(None, alias="sessionId", description="Analyse this saved session")
    messages: Turns | None = Field(None, description="Without sessionId: the conversation to analyse")
    settings: SeedSettings | None = None

    @model_validator(mode="after")
    def _something_to_analyse(self) -> AnalyzeAction:
        if self.session_id is None and not self.messages:
            raise ValueError("send sessionId (a saved session) or messages (the conversation) to analyse")
        return self


class SaveSettingsAction(_SeedIn):
    action: Literal["save_settings"]
    settings: SeedSettings


class GetSettingsAction(_SeedIn):
    action: Literal["get_settings"]


class StartSessionAction(_SeedIn):
    action: Literal["start_session"]
    session_id: ClientId | None = Field(None, alias="sessionId", description="The client's own id for the session")
    settings: SeedSettings | None = None
    tutor_name: TutorName | None = Field(None, alias="tutorName")


class EndSessionAction(_SeedIn):
    action: Literal["end_session"]
    session_id: SessionRef = Field(alias="sessionId")
    # The seed's clients send their own counts; Parley measures these from the saved messages.
    duration: int | None = None
    turn_count: int | None = Field(None, alias="turnCount")
    word_count: int | None = Field(None, alias="wordCount")


class SaveMessageAction(_SeedIn):
    action: Literal["save_message"]
    session_id: SessionRef = Field(alias="sessionId")
    message: SeedMessageIn


class GetSessionsAction(_SeedIn):
    action: Literal["get_sessions"]
    limit: int = Field(10, ge=1, le=100)
    last_key: Annotated[str, StringConstraints(max_length=2048)] | None = Field(None, alias="lastKey")


class GetSessionDetailAction(_SeedIn):
    action: Literal["get_session_detail"]
    session_id: SessionRef = Field(alias="sessionId")


class DeleteSessionAction(_SeedIn):
    action: Literal["delete_session"]
    session_id: SessionRef = Field(alias="sessionId")


class GetTranscribeUrlAction(_SeedIn):
    action: Literal["get_transcribe_url"]
    language: TranscribeLanguage = "en-US"
    sample_rate: int = Field(16000, alias="sampleRate", ge=8000, le=48000)


ActionRequest = Annotated[
    ChatAction | TtsAction | SttAction | AnalyzeAction | SaveSettingsAction | GetSettingsAction | StartSessionAction
    | EndSessionAction | SaveMessageAction | GetSessionsAction | GetSessionDetailAction | DeleteSessionAction
    | GetTranscribeUrlAction,
    Field(discriminator="action"),
]
ACTIONS: tuple[str, ...] = (
    "chat", "tts", "stt", "analyze", "save_settings", "get_settings", "start_session", "end_session",
    "save_message", "get_sessions", "get_session_detail", "delete_session", "get_transcribe_url",
)


def _body_kind(value: Any) -> str:
    return "action" if isinstance(value, dict) and "action" in value else "message"


# POST /chat's body: Parley's own chat request, or (when the body has an ``action``) the envelope.
ChatBody = Annotated[
    Annotated[ChatRequest, Tag("message")] | Annotated[ActionRequest, Tag("action")],
    Discriminator(_body_kind),
]


# -- answers: the seed's shapes, with Parley's fuller objects beside them ------------------------
class SeedChatReply(ApiModel):
    message: str = Field(description="The tutor's reply")
    translation: str | None = Field(None, description="Always null: Parley does not translate replies")
    role: Literal["assistant"] = "assistant"
    engine: str | None
    model: str | None
    fallback_from: str | None = None
    usage: ChatUsage
    history_truncated: bool


class SeedTranscript(ApiModel):
    success: bool = Field(description="True when the transcript is here; false while it is still running")
    transcript: str | None = Field(None, description="The text (when status is completed)")
    status: Literal["queued", "running", "completed"]
    transcription_id: str
    poll: str | None = Field(None, description="While not completed: GET this for the result")
    transcription: TranscriptionOut


class SeedFillers(BaseModel):
    count: int
    words: list[str]
    percentage: float


class SeedCorrection(BaseModel):
    original: str
    corrected: str
    explanation: str


class SeedVocabulary(BaseModel):
    total_words: int
    unique_words: int
    advanced_words: list[str]
    suggested_words: list[str]


class SeedAnalysis(BaseModel):
    """The seed's analysis object (snake_case keys, scores 0-100)."""

    model_config = ConfigDict(defer_build=True)

    cafp_scores: dict[str, int | None] = Field(description="Parley's 1-10 scores x 10; pronunciation is null "
                                                           "when the session has no recordings")
    fillers: SeedFillers
    grammar_corrections: list[SeedCorrection]
    vocabulary: SeedVocabulary
    overall_feedback: str
    improvement_tips: list[str]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)


class StoredFillers(_Camel, SeedFillers):
    pass


class StoredCorrection(_Camel, SeedCorrection):
    pass


class StoredVocabulary(_Camel, SeedVocabulary):
    pass


class SeedStoredAnalysis(_Camel):
    """The analysis as ``get_session_detail`` shows it: the same content as ``analyze``'s, with
    camelCase keys at every level, as the rest of that answer (``analyze`` keeps the seed's
    snake_case object)."""

    cafp_scores: dict[str, int | None]
    fillers: StoredFillers
    grammar_corrections: list[StoredCorrection]
    vocabulary: StoredVocabulary
    overall_feedback: str
    improvement_tips: list[str]


class SeedAnalysisReply(ApiModel):
    success: bool = Field(description="True when the analysis is here; false while it is still running")
    status: Literal["running", "completed"]
    session_id: str = Field(description="The analysed session (the client's id when it gave one)")
    analysis: SeedAnalysis | None = None
    poll: str | None = Field(None, description="While running: GET this for the result")
    report: AnalysisReport | None = Field(None, description="Parley's full report (evidence, CEFR, measurements)")


class SeedSettingsOut(ApiModel):
    """The saved settings under the seed's keys (``speed``), in the spellings every route answers."""

    accent: Accent
    gender: Gender
    speed: SpeechRate
    level: Level
    topic: Topic
    tutor_name: str

    @classmethod
    def of(cls, saved: Settings) -> SeedSettingsOut:
        return cls(accent=saved.accent, gender=saved.gender, speed=saved.speech_rate, level=saved.level,
                   topic=saved.topic, tutor_name=saved.tutor_name)


class SeedSettingsReply(ApiModel):
    success: bool = True
    settings: SeedSettingsOut
    is_default: bool = Field(description="True when nothing was saved yet (these are the defaults)")
    updated_at: str | None


class SeedSessionReply(ApiModel):
    """start_session and end_session: the session (the one shape every route answers), and the
    seed's top-level keys."""

    success: bool = True
    session_id: str = Field(description="The id the request named (the client's own, when it gave one)")
    started_at: str
    ended_at: str | None = None
    session: Session


class SeedMessageReply(ApiModel):
    success: bool = True
    message_id: str
    message: Message


class SeedSessionsReply(ApiModel):
    sessions: list[Session] = Field(description="Newest first; the same session object as GET /sessions")
    has_more: bool
    last_key: str | None = Field(None, description="Send back as lastKey for the next page")


class SeedMessageOut(ApiModel):
    message_id: str
    role: Role
    content: str
    translation: str | None
    timestamp: str
    turn_number: int


class SeedSessionDetailReply(ApiModel):
    session: Session
    messages: list[SeedMessageOut]
    analysis: SeedStoredAnalysis | None = Field(None, description="The completed analysis, if any")


class SeedDeleteReply(ApiModel):
    success: bool = True
    deleted_count: int


class SeedTranscribeUrlReply(ApiModel):
    url: str
    expires_in: int = Field(description="Seconds the URL is valid")
    expires_at: str
    language_code: str
    media_encoding: str
    sample_rate: int


SeedReply = (SeedChatReply | SpeechOut | SeedTranscript | SeedAnalysisReply | SeedSettingsReply | SeedSessionReply
             | SeedMessageReply | SeedSessionsReply | SeedSessionDetailReply | SeedDeleteReply
             | SeedTranscribeUrlReply)


# -- mapping Parley's results to the seed's shapes ---------------------------------------------
AnalysisShape = TypeVar("AnalysisShape", SeedAnalysis, SeedStoredAnalysis)


def seed_analysis(report: AnalysisReport, model: type[AnalysisShape] = SeedAnalysis) -> AnalysisShape:  # type: ignore[assignment]
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


class InvalidValue(UnprocessableEntity):
    """A model built from the envelope's values refused them: the 422 the route would answer."""

    code = "VALIDATION_ERROR"

    @classmethod
    def of(cls, error: PydanticValidationError) -> InvalidValue:
        return cls("The request is not valid; see details.", details=[
            {"field": ".".join(map(str, ("body", *e["loc"]))), "message": e["msg"], "type": e["type"]}
            for e in error.errors()])


class RouteAnswer(ParleyError):
    """An error another function answered, passed on as it was (status, code, message, details)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, details=details, headers=headers)
        self.status, self.code = status, code


# -- validation errors of POST /chat -----------------------------------------------------------
def _without_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union tags pydantic puts in a location (``body.action.tts.text`` -> ``body.text``)."""
    parts = list(loc)
    if len(parts) > 1 and parts[1] in ("message", "action"):
        del parts[1]
        if len(parts) > 1 and parts[1] in ACTIONS:
            del parts[1]
    return tuple(parts)


def chat_validation_error(exc: RequestValidationError) -> ParleyError | RequestValidationError:
    """An unknown action becomes 400 ``UNKNOWN_ACTION``; other errors lose the union tags."""
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "union_tag_invalid":
            given = (error.get("input") or {}).get("action") if isinstance(error.get("input"), dict) else None
            return UnknownAction(f"Unknown action {given!r}. Known actions: {', '.join(ACTIONS)}.",
                                 details=[{"field": "body.action", "known": list(ACTIONS)}])
    return RequestValidationError([{**e, "loc": _without_tags(tuple(e.get("loc", ())))} for e in errors],
                                  body=exc.body)


class UnknownAction(BadRequest):
    code = "UNKNOWN_ACTION"


class EnvelopeDisabled(BadRequest):
    code = "ACTION_ENVELOPE_DISABLED"


class TranscriptionFailed(UnprocessableEntity):
    code = "TRANSCRIPTION_FAILED"


class AnalysisFailed(ParleyError):
    status = 502
    code = "ANALYSIS_FAILED"


def stream_url_from(lambda_client: Any, function_name: str) -> Callable[[str, str, int], StreamUrlOut]:
    """``get_transcribe_url`` is answered by the stream-URL function itself, invoked with the event
    API Gateway would send it: its role (whose credentials sign the URL the client gets) may do
    nothing but start a streaming transcription, and this function's role must not sign it instead."""
    def stream_url(owner: str, language: str, sample_rate: int) -> StreamUrlOut:
        path = "/transcriptions/stream-url"
        hashed = str(logger.get_current_keys().get("owner_hash") or "")  # this request's, from its authorizer
        event = {
            "resource": path, "path": path, "httpMethod": "GET", "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": {"languageCode": language, "sampleRate": str(sample_rate)},
            "multiValueQueryStringParameters": {"languageCode": [language], "sampleRate": [str(sample_rate)]},
            "pathParameters": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": path,
                               "authorizer": {"principalId": hashed, "owner": owner, "ownerHash": hashed}},
        }
        try:
            result = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
            answer = json.loads(result["Payload"].read() or b"null")
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise ServiceUnavailable("The streaming URL could not be made right now; retry in a moment.",
                                     headers={"Retry-After": "1"}) from exc
        if result.get("FunctionError") or not isinstance(answer, dict):
            raise ServiceUnavailable("The streaming URL could not be made right now; retry in a moment.",
                                     headers={"Retry-After": "1"})
        body = json.loads(answer.get("body") or "{}")
        if int(answer.get("statusCode", 500)) != 200:
            error = body.get("error") or {}
            headers = {**{k: str(v[-1]) for k, v in (answer.get("multiValueHeaders") or {}).items() if v},
                       **{k: str(v) for k, v in (answer.get("headers") or {}).items()}}
            raise RouteAnswer(int(answer.get("statusCode", 500)), str(error.get("code") or "INTERNAL_ERROR"),
                              str(error.get("message") or "The streaming URL could not be made."),
                              list(error.get("details") or []),
                              {k: v for k, v in headers.items() if k.lower() == "retry-after"})
        return StreamUrlOut.model_validate(body)

    return stream_url


# -- the envelope --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Services:
    """The domain services, built only when an action needs them (a function's cold start pays for
    what it uses)."""

    tutor: Tutor
    chat: Callable[[], Chat]
    speaker: Callable[[], Speaker]
    transcriptions: Callable[[], Transcriptions]
    analyses: Callable[[], Analyses]
    stream_url: Callable[[str, str, int], StreamUrlOut]  # (owner, language, sample rate)


class Envelope:
    def __init__(self, services: Services, *, clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], None] = time.sleep) -> None:
        self.services = services
        self.tutor = services.tutor
        self.clock = clock
        self.pause = pause

    def handle(self, owner: str, request: BaseModel, *, deadline: float, wait_until: float) -> tuple[BaseModel, int]:
        """Answer one action: (reply, HTTP status). ``deadline`` is when the answer must be ready
        (``clock()`` time); ``wait_until`` (earlier) is how long a workflow is waited for."""
        handler = getattr(self, f"_{request.action}")  # type: ignore[attr-defined]
        try:
            return handler(owner, request, deadline=deadline, wait_until=min(wait_until, deadline))  # type: ignore[no-any-return]
        except PydanticValidationError as exc:
            raise InvalidValue.of(exc) from exc

    # -- the tutor's data --------------------------------------------------------------------------
    def _save_settings(self, owner: str, request: SaveSettingsAction, **_: Any) -> tuple[BaseModel, int]:
        saved = self.tutor.get_settings(owner)
        merged = Settings(**{**saved.model_dump(exclude={"updated_at"}), **request.settings.overrides()})
        out = self.tutor.put_settings(owner, merged)
        return SeedSettingsReply(settings=SeedSettingsOut.of(out), is_default=False, updated_at=out.updated_at), 200

    def _get_settings(self, owner: str, _request: GetSettingsAction, **_: Any) -> tuple[BaseModel, int]:
        saved: SettingsOut = self.tutor.get_settings(owner)
        return SeedSettingsReply(settings=SeedSettingsOut.of(saved), is_default=saved.updated_at is None,
                                 updated_at=saved.updated_at), 200

    def _start_session(self, owner: str, request: StartSessionAction, **_: Any) -> tuple[BaseModel, int]:
        settings = request.settings or SeedSettings()
        session, created = self.tutor.start_session(owner, StartSession(
            client_session_id=request.session_id, tutor_name=request.tutor_name or settings.tutor_name,
            topic=settings.topic, accent=settings.accent, level=settings.level, gender=settings.gender))
        return SeedSessionReply(session_id=request.session_id or session.session_id, started_at=session.started_at,
                                session=session), 201 if created else 200

    def _end_session(self, owner: str, request: EndSessionAction, **_: Any) -> tuple[BaseModel, int]:
        session = self.tutor.end_session(owner, self.tutor.resolve_session_id(owner, request.session_id))
        return SeedSessionReply(session_id=request.session_id, started_at=session.started_at,
                                ended_at=session.ended_at, session=session), 200

    def _save_message(self, owner: str, request: SaveMessageAction, **_: Any) -> tuple[BaseModel, int]:
        session_id = self.tutor.resolve_session_id(owner, request.session_id)
        new = request.message
        message, created = self.tutor.add_message(owner, session_id, NewMessage(
            role=new.role, content=new.content, translation=new.translation, turn_number=new.turn_number,
            message_id=new.message_id))
        return SeedMessageReply(message_id=message.message_id, message=message), 201 if created else 200

    def _get_sessions(self, owner: str, request: GetSessionsAction, **_: Any) -> tuple[BaseModel, int]:
        page = self.tutor.list_sessions(owner, limit=request.limit, cursor=request.last_key)
        return SeedSessionsReply(sessions=page.items,
                                 has_more=page.next_cursor is not None, last_key=page.next_cursor), 200

    def _get_session_detail(self, owner: str, request: GetSessionDetailAction, **_: Any) -> tuple[BaseModel, int]:
        session_id = self.tutor.resolve_session_id(owner, request.session_id)
        detail = self.tutor.session_detail(owner, session_id)
        analysis = None
        try:
            status = self.services.analyses().get(owner, session_id)
            if status.report is not None:
                analysis = seed_analysis(status.report, SeedStoredAnalysis)
        except NotFound:
            pass  # not analysed
        messages = [SeedMessageOut(message_id=m.message_id, role=m.role, content=m.content, translation=m.translation,
                                   timestamp=m.created_at, turn_number=m.turn_number) for m in detail.messages]
        return SeedSessionDetailReply(session=Session(**detail.model_dump(exclude={"messages"})), messages=messages,
                                      analysis=analysis), 200  # type: ignore[arg-type]

    def _delete_session(self, owner: str, request: DeleteSessionAction, **_: Any) -> tuple[BaseModel, int]:
        removed = self.tutor.delete_session(owner, self.tutor.resolve_session_id(owner, request.session_id))
        return SeedDeleteReply(deleted_count=removed), 200

    # -- AI and speech -----------------------------------------------------------------------------
    def _chat(self, owner: str, request: ChatAction, *, deadline: float, **_: Any) -> tuple[BaseModel, int]:
        turns = list(request.messages)
        if turns and turns[-1].role != "user":
            raise UnprocessableEntity("The last message must be the learner's (role user): it is what the tutor "
                                      "answers.", details=[{"field": f"body.messages.{len(turns) - 1}.role"}])
        message = turns.pop().content if turns else OPENING_MESSAGE
        settings = request.settings.model_dump(include={"accent", "level", "topic", "tutor_name"}, exclude_none=True) \
            if request.settings else None
        chat_request = ChatRequest(message=message, messages=[{"role": t.role, "content": t.content} for t in turns],
                                   settings=settings)
        reply = self.services.chat().turn(owner, chat_request, deadline=deadline)
        return SeedChatReply(message=reply.reply, engine=reply.engine, model=reply.model,
                             fallback_from=reply.fallback_from, usage=reply.usage,
                             history_truncated=reply.history_truncated), 200

    def _tts(self, owner: str, request: TtsAction, **_: Any) -> tuple[BaseModel, int]:
        settings = request.settings or SeedSettings()
        accent, gender = voice_settings(self.tutor, owner, settings.accent, settings.gender)
        return SpeechOut.of(self.services.speaker().speak(owner, request.text, accent, gender)), 200

    def _get_transcribe_url(self, owner: str, request: GetTranscribeUrlAction, **_: Any) -> tuple[BaseModel, int]:
        out = self.services.stream_url(owner, request.language, request.sample_rate)
        expires_in = max(0, round((parse_iso(out.expires_at) - utcnow()).total_seconds()))
        return SeedTranscribeUrlReply(url=out.url, expires_in=expires_in, expires_at=out.expires_at,
                                      language_code=out.language_code, media_encoding=out.media_encoding,
                                      sample_rate=out.sample_rate), 200

    # -- the two workflows -------------------------------------------------------------------------
    def _wait(self, read: Callable[[], T], finished: Callable[[T], bool], wait_until: float) -> T:
        """``read()`` until ``finished``, pausing between reads (quick at first), while a pause still
        ends before ``wait_until``; returns the last read."""
        latest = read()
        for pause in itertools.chain(WAIT_PAUSES, itertools.repeat(WAIT_PAUSES[-1])):
            if finished(latest) or self.clock() + pause > wait_until:
                break
            self.pause(pause)
            latest = read()
        return latest

    def _stt(self, owner: str, request: SttAction, *, wait_until: float, **_: Any) -> tuple[BaseModel, int]:
        session_id = self.tutor.resolve_session_id(owner, request.session_id) if request.session_id else None
        transcriptions = self.services.transcriptions()
        started = transcriptions.create(owner, CreateTranscription(
            audio=request.audio, format=request.format, session_id=session_id, language=request.language))
        result = self._wait(lambda: transcriptions.get(owner, started.transcription_id),
                            lambda t: t.status in ("completed", "failed"), wait_until)
        if result.status == "failed":
            reason = result.reason
            raise TranscriptionFailed(reason.message if reason else "The transcription failed.",
                                      details=[{"transcriptionId": result.transcription_id,
                                                "reason": reason.code if reason else "Unknown"}])
        done = result.status == "completed"
        return SeedTranscript(success=done, transcript=result.text if done else None, status=result.status,
                              transcription_id=result.transcription_id,
                              poll=None if done else f"/transcriptions/{result.transcription_id}",
                              transcription=result), 200 if done else 202

    def _analyze(self, owner: str, request: AnalyzeAction, *, wait_until: float, **_: Any) -> tuple[BaseModel, int]:
        analyses = self.services.analyses()
        if request.session_id is not None:
            session_id = self.tutor.resolve_session_id(owner, request.session_id)
            shown_id = request.session_id
        else:
            session = self._session_of(owner, request, analyses.min_learner_turns)
            session_id, shown_id = session.session_id, session.client_session_id or session.session_id
        status, _started = analyses.start(owner, session_id)
        status = self._wait(lambda: analyses.get(owner, session_id), lambda s: s.status != "running", wait_until) \
            if status.status == "running" else status
        return self._analysis_reply(status, shown_id)

    def _session_of(self, owner: str, request: AnalyzeAction, min_learner_turns: int) -> Session:
        """The saved session holding ``messages`` (the seed analysed the conversation it was sent;
        Parley analyses sessions). The seed's clients save their conversation with start_session and
        save_message, then send it again to analyze: a recent session whose learner messages are
        exactly these is that conversation. Otherwise the messages are saved as a session of their
        own, whose id derives from them, so sending the same conversation again finds it (and its
        report) instead of saving a copy."""
        turns = request.messages or []
        learner = sum(1 for t in turns if t.role == "user")
        if learner < min_learner_turns:
            raise NotEnoughToAnalyse(
                f"Too little to analyse: {learner} learner turn(s); at least {min_learner_turns} are needed.",
                details=[{"field": "body.messages", "message": f"needs at least {min_learner_turns} user messages",
                          "value": learner}])
        if saved := self._saved_session_with(owner, turns):
            return saved
        digest = hashlib.sha256("\x1e".join(f"{t.role}\x1f{t.content}" for t in turns).encode()).hexdigest()[:40]
        settings = request.settings or SeedSettings()
        session, _created = self.tutor.start_session(owner, StartSession(
            client_session_id=f"conv-{digest}", tutor_name=settings.tutor_name, topic=settings.topic,
            accent=settings.accent, level=settings.level, gender=settings.gender))
        if session.status == "active":  # new, or an earlier attempt stopped before ending it
            for index, turn in enumerate(turns):
                self.tutor.add_message(owner, session.session_id, NewMessage(
                    role=turn.role, content=turn.content, message_id=f"{digest[:24]}-{index}"))
            session = self.tutor.end_session(owner, session.session_id)
        return session

    def _saved_session_with(self, owner: str, turns: list[SeedTurn]) -> Session | None:
        """One of the owner's newest sessions whose learner messages are exactly those of ``turns``."""
        said = [t.content for t in turns if t.role == "user"]
        for session in self.tutor.list_sessions(owner, limit=RECENT_SESSIONS_MATCHED, cursor=None).items:
            if session.turn_count != len(said):  # the learner-turn count rules most out without a read
                continue
            if [m.content for m in self.tutor.history(owner, session.session_id) if m.role == "user"] == said:
                return session
        return None

    def _analysis_reply(self, status: AnalysisStatus, shown_id: str) -> tuple[BaseModel, int]:
        if status.status == "failed":
            error = status.error
            code, reason = (error.code, error.reason) if error else ("Unknown", "The analysis failed; try again.")
            if code == "QuotaExceeded":
                raise QuotaExceeded(reason)
            if code in ("ProviderError", "Timeout", "States.Timeout"):
                raise ServiceUnavailable(reason, details=[{"sessionId": shown_id, "reason": code}],
                                         headers={"Retry-After": "5"})
            raise AnalysisFailed(reason, details=[{"sessionId": shown_id, "reason": code}])
        if status.status == "running" or status.report is None:
            return SeedAnalysisReply(success=False, status="running", session_id=shown_id,
                                     poll=f"/sessions/{status.session_id}/analysis"), 202
        return SeedAnalysisReply(success=True, status="completed", session_id=shown_id,
                                 analysis=seed_analysis(status.report), report=status.report), 200
