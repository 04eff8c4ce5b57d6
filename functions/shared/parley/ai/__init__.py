"""The AI provider layer shared by chat, analysis and proofreading.

``types`` is the contract every engine implements (complete and stream); ``offline`` is the
deterministic engine for the local stack and tests. The Bedrock and Anthropic engines and the
fallback between them import their SDKs only when they are built, so a function that never calls
the Anthropic API never pays for importing it.
"""

from parley.ai.types import (
           AiAnswer,
           AiProvider,
           AiRequest,
           ModelRefused,
           ProviderError,
           ProviderMisconfigured,
           ProviderRejected,
           TokenUsage,
           Turn,
)

__all__ = ["AiAnswer", "AiProvider", "AiRequest", "ModelRefused", "ProviderError", "ProviderMisconfigured",
           "ProviderRejected", "TokenUsage", "Turn"]
