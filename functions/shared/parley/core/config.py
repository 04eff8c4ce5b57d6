"""Each function's environment as a pydantic model, validated once at cold start.

Handlers call ``SomeEnv.load(os.environ)``; this package never reads the environment itself.
A missing or malformed variable fails the cold start with a message naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Env(BaseModel):
    # defer_build: each env class gets its validator on first use, so a function builds only its own.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    @classmethod
    def load(cls, environ: Mapping[str, str]) -> Self:
        return cls.model_validate(dict(environ))


class ApiEnv(_Env):
    """What every API function needs."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    cors_allow_origin: str = Field(alias="CORS_ALLOW_ORIGIN", min_length=1)
    data_retention_days: int = Field(90, alias="DATA_RETENTION_DAYS", ge=1, le=3650)
    max_body_bytes: int = Field(64 * 1024, alias="MAX_BODY_BYTES", ge=1024, le=10 * 1024 * 1024)


class AuthorizerEnv(_Env):
    auth_mode: str = Field(alias="AUTH_MODE", pattern="^(cognito|device)$")
    owner_hash_secret: str = Field("", alias="OWNER_HASH_SECRET", max_length=2048,
                                   description="Name or ARN of the secret keying the owner hash in logs")
    user_pool_id: str = Field("", alias="USER_POOL_ID")
    user_pool_client_id: str = Field("", alias="USER_POOL_CLIENT_ID")
    region: str = Field("us-east-1", alias="AWS_REGION")


class MeteringEnv(_Env):
    """Usage metering and quotas (issue 5). Every function gets these from the template's Globals;
    a function that makes billable calls mixes this into its own env class, e.g.
    ``class ChatEnv(ApiEnv, MeteringEnv)``, and builds ``parley.usage.publisher.publisher_from(ENV)`` and
    ``parley.usage.quota.guard_from(ENV, store)``."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    usage_parking_queue_url: str = Field("", alias="USAGE_PARKING_QUEUE_URL")
    price_table_overrides: str = Field("{}", alias="PRICE_TABLE_OVERRIDES")
    quota_monthly_tokens: int = Field(0, alias="QUOTA_MONTHLY_TOKENS", ge=0)
    quota_monthly_cost_usd: float = Field(0, alias="QUOTA_MONTHLY_COST_USD", ge=0)

    @field_validator("price_table_overrides")
    @classmethod
    def _valid_price_table(cls, value: str) -> str:
        from parley.usage.pricing import PriceTable

        PriceTable.with_overrides(value or "{}")  # fail the cold start on a bad PriceTableOverrides
        return value or "{}"


class UsageApiEnv(ApiEnv, MeteringEnv):
    """GET /usage."""


class UsageRecorderEnv(_Env):
    """The usage recorder (EventBridge rule target and parking-queue consumer)."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    usage_marker_days: int = Field(15, alias="USAGE_MARKER_DAYS", ge=1, le=365)


class AiEnv(_Env):
    """The AI provider layer (issue 3), with the seed's names. Every function gets these from the
    template's Globals; ``parley.ai.factory.build_provider(AiEnv)`` turns them into an engine."""

    ai_provider: Literal["anthropic_api", "bedrock", "offline"] = Field("bedrock", alias="AI_PROVIDER")
    fallback_to_bedrock: bool = Field(True, alias="FALLBACK_TO_BEDROCK")
    anthropic_secret_name: str = Field("", alias="ANTHROPIC_SECRET_NAME", max_length=512)
    anthropic_model_id: str = Field("claude-haiku-4-5", alias="ANTHROPIC_MODEL_ID", min_length=1)
    # Claude Haiku 4.5 through the global cross-region inference profile (parley.ai.models).
    bedrock_model_id: str = Field("global.anthropic.claude-haiku-4-5-20251001-v1:0", alias="BEDROCK_MODEL_ID",
                                  min_length=1)
    anthropic_max_tokens: int = Field(16_384, alias="ANTHROPIC_MAX_TOKENS", ge=1, le=64_000)
    anthropic_temperature: float = Field(0.7, alias="ANTHROPIC_TEMPERATURE", ge=0, le=1)
    enable_native_web_search: bool = Field(False, alias="ENABLE_NATIVE_WEB_SEARCH")
    web_search_max_uses: int = Field(5, alias="WEB_SEARCH_MAX_USES", ge=0, le=20)
    chat_max_tokens: int = Field(300, alias="CHAT_MAX_TOKENS", ge=16, le=4096)
    # Not template parameters: per-function tuning with sensible defaults.
    ai_timeout_seconds: float = Field(25.0, alias="AI_TIMEOUT_SECONDS", gt=0, le=900)
    ai_breaker_threshold: int = Field(3, alias="AI_BREAKER_THRESHOLD", ge=1, le=100)
    ai_breaker_cooldown_seconds: float = Field(30.0, alias="AI_BREAKER_COOLDOWN_SECONDS", ge=0, le=3600)

    @model_validator(mode="after")
    def _anthropic_needs_its_secret(self) -> Self:
        if self.ai_provider == "anthropic_api" and not self.anthropic_secret_name:
            raise ValueError("AI_PROVIDER=anthropic_api needs ANTHROPIC_SECRET_NAME (the Secrets Manager secret)")
        return self


class ChatEnv(ApiEnv, MeteringEnv, AiEnv):
    """POST /chat: the API, metering and the AI layer, plus the history budget; and, with
    ``SEED_ACTIONS=enabled``, what seed 000's action envelope needs to reach the other services."""

    chat_history_tokens: int = Field(540, alias="CHAT_HISTORY_TOKENS", ge=100, le=100_000)
    seed_actions: Literal["enabled", "disabled"] = Field("disabled", alias="SEED_ACTIONS")
    envelope_wait_seconds: float = Field(25.0, alias="ENVELOPE_WAIT_SECONDS", ge=0, le=28)
    audio_bucket_name: str = Field("", alias="AUDIO_BUCKET_NAME")
    transcription_state_machine_arn: str = Field("", alias="TRANSCRIPTION_STATE_MACHINE_ARN")
    analysis_state_machine_arn: str = Field("", alias="ANALYSIS_STATE_MACHINE_ARN")
    analysis_min_learner_turns: int = Field(3, alias="ANALYSIS_MIN_LEARNER_TURNS", ge=1, le=100)
    stream_url_function_name: str = Field("", alias="STREAM_URL_FUNCTION_NAME")

    @model_validator(mode="after")
    def _envelope_needs_its_services(self) -> Self:
        if self.seed_actions == "enabled":
            missing = [name for name, value in (
                ("AUDIO_BUCKET_NAME", self.audio_bucket_name),
                ("TRANSCRIPTION_STATE_MACHINE_ARN", self.transcription_state_machine_arn),
                ("ANALYSIS_STATE_MACHINE_ARN", self.analysis_state_machine_arn),
                ("STREAM_URL_FUNCTION_NAME", self.stream_url_function_name)) if not value]
            if missing:
                raise ValueError(f"SEED_ACTIONS=enabled needs {', '.join(missing)}")
        return self


class SpeechEnv(ApiEnv, MeteringEnv):
    """POST /speech (issue 4)."""


class TranscriptionsEnv(ApiEnv, MeteringEnv):
    """The /transcriptions API (issue 4); each recording reserves its quota before it is started."""

    audio_bucket_name: str = Field(alias="AUDIO_BUCKET_NAME", min_length=3)
    state_machine_arn: str = Field(alias="TRANSCRIPTION_STATE_MACHINE_ARN", pattern=r"^arn:aws[a-z-]*:states:")
    stage: str = Field(alias="STAGE", min_length=1)
    upload_url_seconds: int = Field(300, alias="UPLOAD_URL_SECONDS", ge=60, le=3600)


class TranscriptionStepsEnv(MeteringEnv):
    """The transcription workflow's Lambda tasks (issue 4)."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    audio_bucket_name: str = Field(alias="AUDIO_BUCKET_NAME", min_length=3)
    stage: str = Field(alias="STAGE", min_length=1)
    data_retention_days: int = Field(90, alias="DATA_RETENTION_DAYS", ge=1, le=3650)


class AnalysisApiEnv(ApiEnv, MeteringEnv):
    """POST/GET /sessions/{sessionId}/analysis and GET /progress (issue 6); the quota is checked
    before an analysis is started, so an owner over quota gets 429 at once."""

    analysis_state_machine_arn: str = Field(alias="ANALYSIS_STATE_MACHINE_ARN", pattern=r"^arn:aws[a-z-]*:states:")
    analysis_min_learner_turns: int = Field(3, alias="ANALYSIS_MIN_LEARNER_TURNS", ge=1, le=100)


class AnalysisStepsEnv(_Env):
    """The analysis workflow's measure, save and fail tasks (issue 6)."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)


class AnalysisJudgeEnv(AnalysisStepsEnv, MeteringEnv, AiEnv):
    """The analysis workflow's judge: the table, metering and the AI layer (issue 6)."""


class StreamUrlEnv(ApiEnv, MeteringEnv):
    """GET /transcriptions/stream-url (issue 4): each URL reserves and is metered as
    ``STREAMING_SECONDS_PER_URL`` seconds of streaming transcription."""

    region: str = Field("us-east-1", alias="AWS_REGION")
    stream_url_seconds: int = Field(60, alias="STREAM_URL_SECONDS", ge=10, le=300)
    streaming_seconds_per_url: int = Field(120, alias="STREAMING_SECONDS_PER_URL", ge=15, le=14_400)
    transcribe_streaming_endpoint: str = Field(
        "", alias="TRANSCRIBE_STREAMING_ENDPOINT", pattern=r"^(wss?://[A-Za-z0-9.-]+(:\d{1,5})?)?$",
        description="Overrides Transcribe's streaming endpoint (the local stack's emulator); empty in AWS.")


class PromptsEnv(ApiEnv):
    """The /prompts API (issue 7): prompts and their reference files."""

    prompt_files_bucket: str = Field(alias="PROMPT_FILES_BUCKET", min_length=3)
    prompt_budget_bytes: int = Field(100_000, alias="PROMPT_BUDGET_BYTES", ge=1_000, le=1_000_000)
    prompt_file_max_bytes: int = Field(50_000, alias="PROMPT_FILE_MAX_BYTES", ge=100, le=1_000_000)
    prompt_max_files: int = Field(10, alias="PROMPT_MAX_FILES", ge=0, le=100)
    upload_url_seconds: int = Field(300, alias="UPLOAD_URL_SECONDS", ge=60, le=3600)
    proofreading_models: str = Field("", alias="PROOFREADING_MODELS", max_length=2000,
                                     description="Comma-separated model ids a prompt may choose.")

    @property
    def allowed_models(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.proofreading_models.split(",") if m.strip())


class _WebSocketRouteEnv(_Env):
    """What a WebSocket message route reads: where to post frames, the connections' lifetime, and the
    per-owner message limit."""

    websocket_callback_url: str = Field("", alias="WEBSOCKET_CALLBACK_URL",
                                        description="Overrides the @connections endpoint (local stack).")
    ws_connection_ttl_seconds: int = Field(7800, alias="WS_CONNECTION_TTL_SECONDS", ge=60, le=86_400)
    ws_messages_per_minute: int = Field(30, alias="WS_MESSAGES_PER_MINUTE", ge=1, le=10_000,
                                        description="Messages one owner may send a minute over the WebSocket")


class ProofreadingEnv(PromptsEnv, MeteringEnv, AiEnv, _WebSocketRouteEnv):
    """POST /proofread and the WebSocket message route (issue 7)."""

    ws_resume_grace_seconds: float = Field(
        20, alias="WS_RESUME_GRACE_SECONDS", ge=0, le=120,
        description="How long an answer goes on after its client disconnected, waiting for it to come back.")


class WebSocketConnectionEnv(_Env):
    """$connect and $disconnect (issue 7)."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    ws_connection_ttl_seconds: int = Field(7800, alias="WS_CONNECTION_TTL_SECONDS", ge=60, le=86_400)


class VoiceTurnEnv(MeteringEnv, AiEnv, _WebSocketRouteEnv):
    """The WebSocket route ``tutorTurn`` (the streamed voice turn, issue 18): what the chat turn reads
    (``parley.tutor.chat.chat_from``: the table, the AI layer, the history budget), metering for the
    model and Polly, and the WebSocket's connections and limits."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    data_retention_days: int = Field(90, alias="DATA_RETENTION_DAYS", ge=1, le=3650)
    chat_history_tokens: int = Field(540, alias="CHAT_HISTORY_TOKENS", ge=100, le=100_000)
    turn_seconds: float = Field(
        25.0, alias="TURN_SECONDS", ge=5, le=28,
        description="What one turn may take, inside API Gateway's 29 s integration timeout.")
