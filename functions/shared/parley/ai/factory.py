"""Turn a function's ``AiEnv`` into the engine it should call.

    AI_PROVIDER=bedrock        Bedrock (Converse) alone
    AI_PROVIDER=anthropic_api  the Anthropic API, with Bedrock as fallback when FALLBACK_TO_BEDROCK
    AI_PROVIDER=offline        the deterministic offline engine (local stack, tests)

Real engines are wrapped in ``FallbackProvider`` (even without a secondary) so every call is retried
within its deadline, counted in the ``Provider*`` metrics and guarded by a circuit breaker. The
Bedrock fallback of an Anthropic model is the same model on Bedrock (``models.bedrock_equivalent``),
through an inference profile of ``BEDROCK_MODEL_ID``'s geography. Engines and breakers are built once
per execution environment (``build_provider`` is cached on the env) so the Anthropic SDK client and
its connection pool, the cached API key and the breaker state are reused across invocations.

Nothing here imports ``anthropic``: ``preload_sdk(env)`` does, and only when the Anthropic API is
configured — call it at a handler's module level so the import happens in the Lambda init phase.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from parley.ai.bedrock import BedrockProvider
from parley.ai.fallback import CircuitBreaker, FallbackProvider
from parley.ai.models import bedrock_equivalent
from parley.ai.offline import OfflineProvider
from parley.ai.types import AiProvider
from parley.core import clients
from parley.core.config import AiEnv

_BREAKERS: dict[str, CircuitBreaker] = {}


def breaker_for(engine: str, env: AiEnv) -> CircuitBreaker:
    """One breaker per engine per execution environment."""
    if engine not in _BREAKERS:
        _BREAKERS[engine] = CircuitBreaker(threshold=env.ai_breaker_threshold,
                                           cooldown=env.ai_breaker_cooldown_seconds)
    return _BREAKERS[engine]


def preload_sdk(env: AiEnv) -> None:
    """Import the Anthropic SDK now (init phase) if, and only if, this function will call it."""
    if env.ai_provider == "anthropic_api":
        from parley.ai.anthropic_api import load_sdk

        load_sdk()


def assemble(env: AiEnv, *, bedrock_client: Any = None, anthropic_options: dict[str, Any] | None = None,
             breaker: Callable[[str, AiEnv], CircuitBreaker] = breaker_for) -> AiProvider:
    """Build the engine for ``env`` (uncached; tests pass a stubbed Bedrock client and a mock HTTP
    client for the Anthropic SDK through ``anthropic_options``)."""
    if env.ai_provider == "offline":
        return OfflineProvider()

    def bedrock(model: str) -> BedrockProvider:
        # One client per whole second of read timeout, botocore's retries off: the fallback layer
        # retries within the deadline.
        client = bedrock_client or (
            lambda read_timeout: clients.model_client("bedrock-runtime", read_timeout=read_timeout))
        return BedrockProvider(client, model, timeout=env.ai_timeout_seconds)

    if env.ai_provider == "bedrock":
        return FallbackProvider(bedrock(env.bedrock_model_id), None, breaker("bedrock", env))

    from parley.ai.anthropic_api import AnthropicProvider  # this module does not import the SDK

    primary = AnthropicProvider(env.anthropic_model_id, secret_name=env.anthropic_secret_name,
                                timeout=env.ai_timeout_seconds, **{"max_retries": 0, **(anthropic_options or {})})
    secondary = bedrock(bedrock_equivalent(env.anthropic_model_id, env.bedrock_model_id)) \
        if env.fallback_to_bedrock else None
    return FallbackProvider(primary, secondary, breaker("anthropic", env))


@functools.cache
def build_provider(env: AiEnv) -> AiProvider:
    """The engine for this function, built once per execution environment."""
    return assemble(env)


def reset() -> None:
    """Forget built engines and breaker state (tests)."""
    build_provider.cache_clear()
    _BREAKERS.clear()
