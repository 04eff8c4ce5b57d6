"""The price table that turns a usage event's units into an estimated cost in US dollars.

The defaults are the seed's cost table (Claude Haiku $0.25 / $1.25 per million input / output
tokens, Polly neural $16 per million characters, Transcribe $0.024 a minute) plus list prices for
the other Claude models, Polly's other voice engines, prompt-cache reads and writes and web search.
The ``PriceTableOverrides`` template parameter (a JSON object of the same shape, merged over the
defaults) changes any of them without a code change:

    {"modelTokensPerMillion": {"claude-3-haiku": {"input": 0.3, "output": 1.5}},
     "pollyCharactersPerMillion": {"neural": 19.2}}

Costs are computed in ``Decimal`` and rounded to 1e-10 USD, so totals add up exactly.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from parley.core.observability import logger
from parley.usage.events import UsageEvent

COST_QUANTUM = Decimal("1e-10")
_MILLION = Decimal(1_000_000)


class TokenPrice(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


def _default_models() -> dict[str, TokenPrice]:
    # Keys are matched as substrings of the model id (Anthropic API or Bedrock spelling,
    # with or without a cross-region prefix); the longest matching key wins.
    table = {
        "parley-offline": (0, 0),  # the offline engine costs nothing
        "claude-3-haiku": (0.25, 1.25),  # the seed's table
        "claude-3-5-haiku": (0.80, 4.00),
        "claude-haiku-4": (1.00, 5.00),
        "claude-3-sonnet": (3.00, 15.00),
        "claude-3-5-sonnet": (3.00, 15.00),
        "claude-3-7-sonnet": (3.00, 15.00),
        "claude-sonnet-4": (3.00, 15.00),
        "claude-3-opus": (15.00, 75.00),
        "claude-opus-4": (15.00, 75.00),
        "claude-opus-4-5": (5.00, 25.00),
        "claude-opus-4-6": (5.00, 25.00),  # Anthropic's model page: $5 / $25 per million
    }
    return {key: TokenPrice(input=i, output=o) for key, (i, o) in table.items()}


class PriceTable(BaseModel):
    """Prices by engine; JSON spelling is camelCase (the template parameter's)."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    model_tokens_per_million: dict[str, TokenPrice] = Field(default_factory=_default_models)
    # An unknown model is priced like a Sonnet (and logged), so a quota is never undercounted.
    default_model_tokens_per_million: TokenPrice = TokenPrice(input=3.00, output=15.00)
    cache_read_multiplier: float = Field(default=0.1, ge=0, description="× the input price, for cache-read tokens")
    cache_write_multiplier: float = Field(default=1.25, ge=0, description="× the input price, for cache-write tokens")
    web_search_per_thousand: float = Field(default=10.0, ge=0)
    polly_characters_per_million: dict[str, float] = Field(default_factory=lambda: {
        "standard": 4.0, "neural": 16.0, "long-form": 100.0, "generative": 30.0})
    transcribe_per_minute: dict[str, float] = Field(default_factory=lambda: {"standard": 0.024, "streaming": 0.024})
    transcribe_minimum_seconds: float = Field(default=15, ge=0, description="Transcribe bills at least this a request")

    @classmethod
    def with_overrides(cls, overrides: str | dict[str, Any] | None) -> PriceTable:
        """The defaults with ``overrides`` (a JSON object, or its text) merged over them."""
        data = json.loads(overrides) if isinstance(overrides, str) else (overrides or {})
        if not isinstance(data, dict):
            raise ValueError("The price table overrides must be a JSON object.")
        base = cls().model_dump(by_alias=True)
        for key, value in data.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "defaultModelTokensPerMillion":
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return cls.model_validate(base)

    # -- lookups ------------------------------------------------------------------------------
    def token_price(self, model: str) -> TokenPrice:
        name = model.lower()
        matches = [key for key in self.model_tokens_per_million if key.lower() in name]
        if not matches:
            logger.warning("No price for this model; priced at the default", extra={"model": model})
            return self.default_model_tokens_per_million
        return self.model_tokens_per_million[max(matches, key=len)]

    def _named(self, table: dict[str, float], name: str, fallback: str, what: str) -> Decimal:
        if name in table:
            return Decimal(str(table[name]))
        logger.warning(f"No {what} price for this model; priced at {fallback!r}", extra={"model": name})
        return Decimal(str(table.get(fallback, max(table.values(), default=0))))

    def cost(self, event: UsageEvent) -> float:
        """The estimated cost of one event in USD, rounded to 1e-10."""
        total = Decimal(0)
        if event.engine == "offline":  # the deterministic engine of tests and the local stack
            return 0.0
        if event.engine in ("anthropic", "bedrock"):
            price = self.token_price(event.model)
            per_in = Decimal(str(price.input)) / _MILLION
            per_out = Decimal(str(price.output)) / _MILLION
            total += event.input_tokens * per_in + event.output_tokens * per_out
            total += event.cache_read_tokens * per_in * Decimal(str(self.cache_read_multiplier))
            total += event.cache_write_tokens * per_in * Decimal(str(self.cache_write_multiplier))
            total += event.web_searches * Decimal(str(self.web_search_per_thousand)) / 1000
        elif event.engine == "polly":
            per_million = self._named(self.polly_characters_per_million, event.model, "neural", "Polly")
            total += event.characters * per_million / _MILLION
        elif event.engine == "transcribe":
            per_minute = self._named(self.transcribe_per_minute, event.model, "standard", "Transcribe")
            seconds = Decimal(str(event.audio_seconds))
            if seconds > 0:
                seconds = max(seconds, Decimal(str(self.transcribe_minimum_seconds)))
            total += seconds * per_minute / 60
        return float(total.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP))


DEFAULT_PRICES = PriceTable()
