"""What every AI engine takes and gives back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..errors import BadRequest, ServiceUnavailable

Engine = Literal["anthropic", "bedrock", "offline"]


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class AiRequest:
    """One model call.

    ``system`` is a list of blocks: the leading blocks are the stable prefix (instructions,
    reference files) and are marked cacheable where the engine supports prompt caching; the
    learner's or writer's text only ever goes into ``messages``, never into ``system``.
    ``purpose`` names the caller ("chat", "analysis", "proofread") for usage records and for the
    offline engine's deterministic answers. ``json_schema``, when set, asks for a JSON object.
    ``timeout_seconds``, when set, caps how long the engine may take (the caller's time budget).
    """

    system: tuple[str, ...]
    messages: tuple[Turn, ...]
    purpose: str = "chat"
    max_tokens: int = 300
    temperature: float = 0.7
    web_search: bool = False
    web_search_max_uses: int = 0
    json_schema: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    web_searches: int = 0


@dataclass(frozen=True)
class UsageReport:
    """Usage so far, which a provider's stream may yield between text deltas (e.g. the input tokens
    the engine announces when the answer starts). ``parley.ai.metering`` keeps the latest one and
    meters it if the stream ends before its final ``AiAnswer``; it never reaches the caller."""

    engine: Engine
    model: str
    usage: TokenUsage


@dataclass(frozen=True)
class AiAnswer:
    text: str
    engine: Engine
    model: str
    usage: TokenUsage
    stop_reason: str = "end_turn"
    fallback_from: str | None = None  # the engine that failed first, when the fallback answered


class ProviderError(ServiceUnavailable):
    """The engine could not answer (throttled, overloaded, 5xx, timeout, unreachable)."""

    code = "AI_UNAVAILABLE"

    def __init__(self, message: str, *, engine: str, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.engine = engine
        self.retryable = retryable
        self.upstream_status = status


class ProviderRejected(BadRequest):
    """The engine refused the request itself (a 4xx of ours): no retry, no fallback."""

    code = "AI_REQUEST_REJECTED"

    def __init__(self, message: str, *, engine: str, status: int | None = None) -> None:
        super().__init__(message)
        self.engine = engine
        self.upstream_status = status


class AiProvider(Protocol):
    @property
    def engine(self) -> Engine:
        """The engine this provider calls first (the answer names the one that really answered)."""
        ...

    @property
    def model(self) -> str:
        ...

    def complete(self, request: AiRequest) -> AiAnswer:
        """The whole answer at once."""
        ...

    def stream(self, request: AiRequest) -> Iterator[str | UsageReport | AiAnswer]:
        """Text deltas as they are generated (and, optionally, ``UsageReport``s), then exactly one
        final ``AiAnswer``."""
        ...
