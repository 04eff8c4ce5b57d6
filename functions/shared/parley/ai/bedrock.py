"""Amazon Bedrock through boto3's Converse / ConverseStream API (no extra SDK).

The ``bedrock-runtime`` client is passed in (``parley.clients.client("bedrock-runtime", ...)`` in a
function; a Stubber-wrapped client in tests). Errors are mapped once, here:

- throttling, 5xx, model timeouts, read/connect timeouts and connection errors
  -> ``ProviderError(retryable=True)`` (retry, or fall back);
- validation, access denied, unknown model -> ``ProviderRejected`` (no retry, no fallback).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError, ReadTimeoutError

from .caching import alternating, bedrock_supports_cache_point, estimate_tokens, long_enough_to_cache, system_texts
from .types import AiAnswer, AiRequest, Engine, ProviderError, ProviderRejected, TokenUsage

ENGINE: Engine = "bedrock"

# Error codes, lower-cased: ClientError codes are "ThrottlingException", stream error events
# "throttlingException".
_RETRYABLE = {
    "throttlingexception", "servicequotaexceededexception", "serviceunavailableexception",
    "internalserverexception", "modeltimeoutexception", "modelnotreadyexception", "modelstreamerrorexception",
    "requesttimeout", "requesttimeoutexception",
}
_STOP_REASONS = {"end_turn": "end_turn", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence",
                 "tool_use": "tool_use", "guardrail_intervened": "refusal", "content_filtered": "refusal"}


def map_error(exc: ClientError | BotoCoreError) -> ProviderError | ProviderRejected:
    """One Bedrock/botocore failure as the provider layer's error."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code.lower() in _RETRYABLE or (isinstance(status, int) and (status >= 500 or status == 429)):
            return ProviderError(f"Bedrock is unavailable ({code}): {message}", engine=ENGINE, retryable=True,
                                 status=status)
        return ProviderRejected(f"Bedrock refused the request ({code}): {message}", engine=ENGINE, status=status)
    if isinstance(exc, ParamValidationError):
        return ProviderRejected(f"Bedrock request is malformed: {exc}", engine=ENGINE)
    # Read/connect timeouts, connection resets, endpoint unreachable, anything else on the wire.
    kind = "did not answer in time" if isinstance(exc, ReadTimeoutError) else "could not be reached"
    return ProviderError(f"Bedrock {kind}: {exc}", engine=ENGINE, retryable=True)


class BedrockProvider:
    engine: Engine = ENGINE

    def __init__(self, client: Any, model: str, *, prompt_caching: bool = True) -> None:
        """``client``: a bedrock-runtime client, or a zero-argument function returning one (so a
        function builds its client on the first call, not at import)."""
        self._client = client
        self.model = model
        self.prompt_caching = prompt_caching and bedrock_supports_cache_point(model)

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "converse"):
            self._client = self._client()
        return self._client

    # -- request ---------------------------------------------------------------------------
    def converse_params(self, request: AiRequest) -> dict[str, Any]:
        texts = system_texts(request)
        system: list[dict[str, Any]] = [{"text": t} for t in texts]
        cache_system = self.prompt_caching and long_enough_to_cache(self.model, texts)
        if cache_system:
            system.append({"cachePoint": {"type": "default"}})
        turns = alternating(request.messages)
        if not turns or turns[-1].role != "user":
            raise ProviderRejected("The conversation must end with a user message.", engine=ENGINE)
        messages: list[dict[str, Any]] = [{"role": t.role, "content": [{"text": t.text}]} for t in turns]
        # Conversation caching: the history before the newest message is a stable prefix too.
        if self.prompt_caching and len(turns) > 2 and long_enough_to_cache(
                self.model, texts + [t.text for t in turns[:-1]]):
            messages[-2]["content"].append({"cachePoint": {"type": "default"}})
        params: dict[str, Any] = {
            "modelId": self.model,
            "messages": messages,
            "inferenceConfig": {"maxTokens": request.max_tokens, "temperature": request.temperature},
        }
        if system:
            params["system"] = system
        return params

    # -- answers ---------------------------------------------------------------------------
    @staticmethod
    def _usage(raw: dict[str, Any] | None) -> TokenUsage:
        raw = raw or {}
        return TokenUsage(
            input_tokens=int(raw.get("inputTokens", 0)), output_tokens=int(raw.get("outputTokens", 0)),
            cache_read_tokens=int(raw.get("cacheReadInputTokens", 0)),
            cache_write_tokens=int(raw.get("cacheWriteInputTokens", 0)),
        )

    def complete(self, request: AiRequest) -> AiAnswer:
        params = self.converse_params(request)
        try:
            response = self.client.converse(**params)
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc) from exc
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(b.get("text", "") for b in blocks)
        return AiAnswer(text=text, engine=ENGINE, model=self.model, usage=self._usage(response.get("usage")),
                        stop_reason=_STOP_REASONS.get(response.get("stopReason", ""), "end_turn"))

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        params = self.converse_params(request)
        parts: list[str] = []
        usage: dict[str, Any] | None = None
        stop = "end_turn"
        try:
            response = self.client.converse_stream(**params)
            for event in response["stream"]:
                if "contentBlockDelta" in event:
                    delta = event["contentBlockDelta"].get("delta", {}).get("text", "")
                    if delta:
                        parts.append(delta)
                        yield delta
                elif "messageStop" in event:
                    stop = _STOP_REASONS.get(event["messageStop"].get("stopReason", ""), "end_turn")
                elif "metadata" in event:
                    usage = event["metadata"].get("usage")
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc) from exc
        text = "".join(parts)
        answer_usage = self._usage(usage) if usage else TokenUsage(
            input_tokens=sum(estimate_tokens(m["content"][0]["text"]) for m in params["messages"]),
            output_tokens=estimate_tokens(text))
        yield AiAnswer(text=text, engine=ENGINE, model=self.model, usage=answer_usage, stop_reason=stop)
