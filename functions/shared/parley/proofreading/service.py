"""Assembling the proofreading service from a function's environment and its clients.

The handlers call these; nothing here reads ``os.environ`` or creates a client on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parley.ai.factory import build_provider
from parley.ai.metering import MeteredProvider
from parley.ai.types import AiProvider
from parley.core.config import AiEnv, PromptsEnv, ProofreadingEnv
from parley.data.store import Store
from parley.proofreading.conversations import Conversations
from parley.proofreading.engine import EngineLimits, Proofreader, ProviderFor
from parley.proofreading.library import PromptLibrary, PromptLimits
from parley.proofreading.models import MAX_PROOFREAD_CHARS, EngineSettings
from parley.usage.events import Product
from parley.usage.publisher import UsagePublisher
from parley.usage.quota import guard_from

PRODUCT: Product = "proofreading"


def prompt_library(env: PromptsEnv, store: Store, s3: Any) -> PromptLibrary:
    return PromptLibrary(store, s3, bucket=env.prompt_files_bucket, limits=PromptLimits(
        budget_bytes=env.prompt_budget_bytes, file_max_bytes=env.prompt_file_max_bytes,
        max_files=env.prompt_max_files, upload_expiry_seconds=env.upload_url_seconds,
        allowed_models=env.allowed_models))


def engine_env(env: AiEnv, model: str | None) -> AiEnv:
    """The AI settings for a prompt's model choice.

    A prompt's model applies to the Anthropic API (``ProofreadingModels`` lists Anthropic model
    ids), and its Bedrock fallback is the same model on Bedrock where ``parley.ai.models`` maps it
    (otherwise ``BedrockModelId``). With ``AiProvider=bedrock`` the choice is not applied: Bedrock
    answers with ``BedrockModelId``. Every answer names the model that really answered.
    """
    if model is None or env.ai_provider != "anthropic_api":
        return env
    return env.model_copy(update={"anthropic_model_id": model})


def metered_providers(env: ProofreadingEnv, store: Store, publisher: UsagePublisher,
                      build: Callable[[AiEnv], AiProvider] | None = None) -> ProviderFor:
    """``(owner, operation, settings) -> provider``: the configured engine, quota-checked and metered
    with product ``proofreading``."""
    quota = guard_from(env, store)
    make = build or build_provider

    def provider_for(owner: str, operation: str, settings: EngineSettings) -> AiProvider:
        return MeteredProvider(make(engine_env(env, settings.model)), owner=owner, product=PRODUCT,
                               operation=operation, publisher=publisher, quota=quota)

    return provider_for


def proofreader(env: ProofreadingEnv, store: Store, s3: Any, provider_for: ProviderFor) -> Proofreader:
    limits = EngineLimits(max_chars=MAX_PROOFREAD_CHARS, max_tokens_cap=env.anthropic_max_tokens,
                          web_search_enabled=env.enable_native_web_search,
                          web_search_max_uses=env.web_search_max_uses)
    return Proofreader(prompt_library(env, store, s3), Conversations(store, retention_days=env.data_retention_days),
                       limits, provider_for)
