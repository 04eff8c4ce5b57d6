"""Prompt caching: when a prefix is long enough to be worth a cache breakpoint, and shared text.

Anthropic (and Bedrock, for the models that support ``cachePoint``) only cache a prefix that is at
least the model's *minimum cacheable prompt length*; a shorter prefix marked cacheable is simply
processed uncached. The minimums, as Anthropic documents them per model:

    ==========================================================================  ======
    model                                                                        tokens
    ==========================================================================  ======
    Claude Opus 4.5, Opus 4.6, Haiku 4.5                                          4096
    Claude Sonnet 4.6, Haiku 3.5, Haiku 3 (the seed's Bedrock model)              2048
    Claude Sonnet 4.5, Opus 4.1, Opus 4, Sonnet 4, Sonnet 3.7, Sonnet 3.5, Opus 3   1024
    any other model: by class - Opus / Sonnet 1024, Haiku 2048; unknown 2048
    ==========================================================================  ======

Token counts here are estimates (about four characters a token) and must beat the minimum by
10 %, so a prefix near the threshold is not marked: a marker on a too-short prefix costs nothing
on Anthropic but is noise, and on Bedrock it is best not sent at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .types import AiRequest, Turn

# Most specific first; matched as substrings, so Bedrock ids ("anthropic.claude-3-haiku-…") match too.
MIN_CACHEABLE_BY_MODEL: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-5", 4096), ("claude-opus-4-6", 4096), ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048), ("claude-3-5-haiku", 2048), ("claude-3-haiku", 2048),
    ("claude-sonnet-4-5", 1024), ("claude-opus-4-1", 1024), ("claude-opus-4-0", 1024),
    ("claude-opus-4-2025", 1024), ("claude-sonnet-4-0", 1024), ("claude-sonnet-4-2025", 1024),
    ("claude-3-7-sonnet", 1024), ("claude-3-5-sonnet", 1024), ("claude-3-opus", 1024),
)
MIN_CACHEABLE_BY_CLASS = {"opus": 1024, "sonnet": 1024, "haiku": 2048}
DEFAULT_MIN_CACHEABLE = 2048
SAFETY = 1.1  # estimates are rough; demand 10 % more than the minimum before marking

# Bedrock model families that accept a ``cachePoint`` block in Converse (Claude 3 Haiku does not).
_BEDROCK_CACHE_FAMILIES = ("claude-3-5-haiku", "claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4",
                           "claude-haiku-4", "nova-")


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English."""
    return max(1, (len(text) + 3) // 4)


def min_cacheable_tokens(model: str) -> int:
    name = model.lower()
    for fragment, minimum in MIN_CACHEABLE_BY_MODEL:
        if fragment in name:
            return minimum
    for family, minimum in MIN_CACHEABLE_BY_CLASS.items():
        if family in name:
            return minimum
    return DEFAULT_MIN_CACHEABLE


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


def system_texts(request: AiRequest) -> list[str]:
    """The request's system blocks, plus the JSON-output instruction when a schema is asked for.

    The schema is as stable as the instructions, so it stays inside the cacheable prefix.
    """
    texts = [t for t in request.system if t.strip()]
    if request.json_schema is not None:
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
