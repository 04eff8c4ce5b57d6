"""What every AI engine takes and gives back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import astuple, dataclass, field
from typing import Any, Literal, Protocol

from parley.ai.deadline import Deadline

Engine = Literal["anthropic", "bedrock", "offline"]
WebSearch = Literal["used", "not used", "unavailable"]
TRUNCATED = ("max_tokens", "model_context_window_exceeded", "pause_turn")  # an incomplete answer


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
    offline engine's deterministic answers. ``json_schema``, when set, asks for a JSON object that
    follows it (the engines' structured output where the model has it). ``deadline``, when set, is
    when the caller must have its answer: every attempt's timeout and every retry come from it.
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
    deadline: Deadline | None = None


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    web_searches: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        """The usage of both (an answer's continuations, a proofreading's retry)."""
        return TokenUsage(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


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
    """One answer. ``text`` is all the text the model wrote (what a stream showed); ``answer_text``
    is the part after its last web-search result, when it searched (a preamble such as "I'll
    check..." comes before the searches). ``stop_reason`` is the engine's, in Anthropic's words:
    ``max_tokens`` (or ``model_context_window_exceeded``, or ``pause_turn`` still paused when there was
    no time left to continue it) means the answer was cut off, ``refusal``
    that the model declined (``refusal`` then says why, when the engine said)."""

    text: str
    engine: Engine
    model: str
    usage: TokenUsage
    stop_reason: str = "end_turn"
    fallback_from: str | None = None  # the engine that failed first, when the fallback answered
    answer_text: str | None = None
    web_search: WebSearch | None = None  # None: not asked for
    refusal: str | None = None

    @property
    def final_text(self) -> str:
        return self.text if self.answer_text is None else self.answer_text

    @property
    def truncated(self) -> bool:
        return self.stop_reason in TRUNCATED

    @property
    def refused(self) -> bool:
        return self.stop_reason == "refusal"


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


class Wrapper:
    """A provider around another one (metering, fallback): it answers for the wrapped one's engine and
    model."""

    wrapped: AiProvider

    @property
    def engine(self) -> Engine:
        return self.wrapped.engine

    @property
    def model(self) -> str:
        return self.wrapped.model
