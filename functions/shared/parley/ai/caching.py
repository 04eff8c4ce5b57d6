"""Prompt caching: when a prefix is long enough to be worth a cache breakpoint, and shared text.

Anthropic (and Bedrock, for the models that support ``cachePoint``) only cache a prefix that is at
least the model's *minimum cacheable prompt length*; a shorter prefix marked cacheable is simply
processed uncached. The minimums (Anthropic's prompt-caching documentation as of 2026-12; the
Bedrock model cards give the same figures for the models they cover - see docs/ai.md):

    ===============================================================================  ======
    model family                                                                     tokens
    ===============================================================================  ======
    Claude Haiku 4.5, Opus 4.5, Opus 4.6                                               4096
    Claude Haiku 3.5, Haiku 3                                                          2048
    Claude Opus 4.8, Sonnet 5, Sonnet 4.6, Sonnet 4.5, Opus 4.1, Opus 4, Sonnet 4,      1024
    Sonnet 3.7
    Claude Opus 5, Fable 5, Mythos 5                                                    512
    any other model (Opus 4.7, the 5.5 family, ...): 4096, the highest current minimum,
    so a prefix is never marked on a guess
    ===============================================================================  ======

The tutor's prompt (about 490 tokens, plus at most ``ChatHistoryTokens`` of history) and the
analysis judge's (about 1,000) are under Claude Haiku 4.5's 4,096, so with the default models they
are never marked: caching pays for proofreading prompts with reference files and long conversations.

Token counts here are estimates (about four characters a token) and must beat the minimum by
10 %, so a prefix near the threshold is not marked: a marker on a too-short prefix costs nothing
on Anthropic but is noise, and on Bedrock it is best not sent at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from parley.ai.models import split_profile
from parley.ai.types import AiRequest, Turn

# By model family: the id without geography, provider, date or version suffix (see ``family``).
MIN_CACHEABLE_BY_FAMILY: dict[str, int] = {
    "claude-haiku-4-5": 4096, "claude-opus-4-5": 4096, "claude-opus-4-6": 4096,
    "claude-3-5-haiku": 2048, "claude-3-haiku": 2048,
    "claude-opus-4-8": 1024, "claude-sonnet-5": 1024, "claude-sonnet-4-6": 1024, "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024, "claude-opus-4": 1024, "claude-sonnet-4": 1024, "claude-3-7-sonnet": 1024,
    "claude-opus-5": 512, "claude-fable-5": 512, "claude-mythos-5": 512,
}
DEFAULT_MIN_CACHEABLE = 4096
SAFETY = 1.1  # estimates are rough; demand 10 % more than the minimum before marking

# Bedrock model families that accept a ``cachePoint`` block in Converse (Claude 3 Haiku does not).
_BEDROCK_CACHE_FAMILIES = ("claude-3-5-haiku", "claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4",
                           "claude-haiku-4", "nova-")
_SUFFIX = re.compile(r"(-\d{8})?(-v\d+(:\d+)?)?$")


def family(model: str) -> str:
    """``global.anthropic.claude-haiku-4-5-20251001-v1:0`` -> ``claude-haiku-4-5``."""
    _, base = split_profile(model.lower())
    base = base.removeprefix("anthropic.")
    return _SUFFIX.sub("", base)


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English."""
    return max(1, (len(text) + 3) // 4)


def min_cacheable_tokens(model: str) -> int:
    return MIN_CACHEABLE_BY_FAMILY.get(family(model), DEFAULT_MIN_CACHEABLE)


def long_enough_to_cache(model: str, texts: Sequence[str]) -> bool:
    tokens = sum(estimate_tokens(t) for t in texts)
    return tokens >= min_cacheable_tokens(model) * SAFETY


def bedrock_supports_cache_point(model: str) -> bool:
    name = model.lower()
    return any(family in name for family in _BEDROCK_CACHE_FAMILIES)


JSON_INSTRUCTION = (
    "Answer with one JSON object only - no prose before or after it, no Markdown code fence. "
    "It must be valid against this JSON Schema:\n"
)


def system_texts(request: AiRequest, *, schema_in_prompt: bool = True) -> list[str]:
    """The request's system blocks, plus the JSON-output instruction when a schema is asked for and
    the engine does not enforce it itself (``schema_in_prompt``): with structured output the schema
    travels once, in the request's output format, not twice.

    The schema is as stable as the instructions, so it stays inside the cacheable prefix.
    """
    texts = [t for t in request.system if t.strip()]
    if request.json_schema is not None and schema_in_prompt:
        texts.append(JSON_INSTRUCTION + json.dumps(request.json_schema, separators=(",", ":"), sort_keys=True))
    return texts


CONVERSATION_START = "(The conversation starts.)"


def alternating(messages: Sequence[Turn]) -> list[Turn]:
    """Messages as both APIs require them: starting with the user, roles alternating.

    Consecutive turns of one role are joined (a learner message whose reply failed, then the next
    one); a conversation the tutor opened (a greeting) gets a neutral first user turn, so the
    greeting stays in context.
    """
    merged: list[Turn] = []
    for turn in messages:
        if not turn.text.strip():
            continue
        if not merged and turn.role == "assistant":
            merged.append(Turn("user", CONVERSATION_START))
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, merged[-1].text + "\n\n" + turn.text)
        else:
            merged.append(turn)
    return merged
