"""The AI provider layer shared by chat, analysis and proofreading.

``types`` is the contract every engine implements (complete and stream); ``offline`` is the
deterministic engine for the local stack and tests. The Bedrock and Anthropic engines and the
fallback between them import their SDKs only when they are built, so a function that never calls
the Anthropic API never pays for importing it. The package re-exports nothing: import a name from
its module, and importing one module costs no more than that module.
"""
