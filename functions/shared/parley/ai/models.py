"""The Claude models Parley knows on both engines: the fallback mapping and each model's limits.

With ``AI_PROVIDER=anthropic_api`` and the Bedrock fallback on, a prompt on an Anthropic model is
answered, when the Anthropic API cannot, by the *same* model on Bedrock, through an inference
profile of the geography ``BEDROCK_MODEL_ID`` uses (``global.``, ``us.``, ``eu.``...). A model not in
this table falls back to ``BEDROCK_MODEL_ID`` itself. Either way ``max_tokens`` is clamped to the
limit of the model that is actually called, so a larger setting never turns into a
``ValidationException``.

The table is also the IAM allow-list: ``AiModelAccessPolicy`` in template.yaml grants exactly these
profiles (and the foundation models they route to, only through them), and a test keeps the two
the same. What each figure was checked against, and when, is in docs/ai.md ("Models").

Anthropic documents Bedrock's Converse / InvokeModel integration (which this engine speaks) for
Claude Opus 4.6 and earlier; later models (Opus 4.7 on, the Claude 5 family) are not mapped until
they are verified: a prompt on one of them falls back to ``BEDROCK_MODEL_ID``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Cross-region inference profile prefixes (the first dotted part of a profile id).
GEOGRAPHIES = ("global", "us", "eu", "apac", "jp", "au", "ca", "us-gov")


@dataclass(frozen=True)
class ClaudeModel:
    name: str
    anthropic_ids: tuple[str, ...]  # the Claude API's id and its dated snapshot / alias
    bedrock_id: str  # the foundation model id on Bedrock (no geography prefix)
    anthropic_max_output: int  # max output tokens on the Claude API
    bedrock_max_output: int  # max output tokens on Bedrock
    structured_output: bool = True  # JSON-schema output (Claude API output_config; Converse outputConfig)


MODELS: tuple[ClaudeModel, ...] = (
    ClaudeModel("Claude Haiku 4.5", ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
                "anthropic.claude-haiku-4-5-20251001-v1:0", 64_000, 64_000),
    ClaudeModel("Claude Sonnet 4.5", ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
                "anthropic.claude-sonnet-4-5-20250929-v1:0", 64_000, 64_000),
    # Bedrock's card for Sonnet 4.6 was not among the pages checked: its Bedrock limit is taken as the
    # lower, 4.5-generation figure until it is.
    ClaudeModel("Claude Sonnet 4.6", ("claude-sonnet-4-6",), "anthropic.claude-sonnet-4-6", 128_000, 64_000),
    ClaudeModel("Claude Opus 4.5", ("claude-opus-4-5", "claude-opus-4-5-20251101"),
                "anthropic.claude-opus-4-5-20251101-v1:0", 64_000, 64_000),
    ClaudeModel("Claude Opus 4.6", ("claude-opus-4-6",), "anthropic.claude-opus-4-6-v1", 128_000, 128_000),
)

DEFAULT_BEDROCK_MODEL = "global.anthropic.claude-haiku-4-5-20251001-v1:0"


def split_profile(model_id: str) -> tuple[str | None, str]:
    """``("global", "anthropic.claude-...")`` for a profile id, ``(None, model_id)`` otherwise."""
    head, dot, rest = model_id.partition(".")
    if dot and head in GEOGRAPHIES:
        return head, rest
    return None, model_id


def find(model_id: str) -> ClaudeModel | None:
    """The catalogue entry for an Anthropic API id or a Bedrock model / profile id."""
    _, base = split_profile(model_id)
    for model in MODELS:
        if model_id in model.anthropic_ids or base == model.bedrock_id:
            return model
    return None


def bedrock_equivalent(anthropic_model: str, bedrock_model: str) -> str:
    """The Bedrock model that answers for ``anthropic_model`` when the Anthropic API cannot: the same
    model, through a profile of ``bedrock_model``'s geography; ``bedrock_model`` when unknown."""
    model = find(anthropic_model)
    if model is None:
        return bedrock_model
    geography, _ = split_profile(bedrock_model)
    return f"{geography}.{model.bedrock_id}" if geography else model.bedrock_id


def max_output_tokens(model_id: str, engine: str) -> int | None:
    model = find(model_id)
    if model is None:
        return None
    return model.bedrock_max_output if engine == "bedrock" else model.anthropic_max_output


def clamp_max_tokens(max_tokens: int, model_id: str, engine: str) -> int:
    """``max_tokens`` within what ``model_id`` can produce on ``engine`` (unknown models: as asked)."""
    limit = max_output_tokens(model_id, engine)
    return min(max_tokens, limit) if limit else max_tokens


def supports_structured_output(model_id: str, engine: str) -> bool:
    """Known models: as the table says. Unknown ones: the Claude API's current models all have it; on
    Bedrock an unknown model gets the schema as a forced tool instead (Converse tool use)."""
    model = find(model_id)
    if model is not None:
        return model.structured_output
    return engine == "anthropic"
