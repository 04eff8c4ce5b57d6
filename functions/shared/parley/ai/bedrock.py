"""Amazon Bedrock through boto3's Converse / ConverseStream API (no extra SDK).

The ``bedrock-runtime`` client comes from a function of the read timeout this call may use
(``parley.core.clients.model_client`` in a function, cached per whole second, with botocore's own retries
off), so each call waits at most until the request's deadline; tests pass a Stubber-wrapped client.
Errors are mapped once, here:

- throttling, 5xx, model errors and timeouts, read/connect timeouts and connection errors
  -> ``ProviderError(retryable=True)`` (retry within the deadline, or fall back);
- a model that is not found or has reached its end of life, a model id that needs an inference
  profile, access denied, a request shape this botocore does not know -> ``ProviderMisconfigured``
  (the deployment's fault: 503 and an operator error, never the caller's 400);
- any other validation error -> ``ProviderRejected`` (no retry, no fallback).

A JSON schema goes out as Converse structured output (``outputConfig.textFormat``) for the models
that have it, otherwise as a forced tool whose input is the answer. Bedrock has no web search: an
answer to a request that asked for it says ``web_search="unavailable"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError, ReadTimeoutError

from parley.ai.caching import (
    alternating,
    bedrock_supports_cache_point,
    estimate_tokens,
    long_enough_to_cache,
    system_texts,
)
from parley.ai.errors import ProviderError, ProviderMisconfigured, ProviderRejected
from parley.ai.models import clamp_max_tokens, supports_structured_output
from parley.ai.schema import strict_schema
from parley.ai.types import AiAnswer, AiRequest, Engine, TokenUsage

ENGINE: Engine = "bedrock"
ANSWER_TOOL = "answer"  # the forced tool that carries a structured answer where outputConfig is not used

# Error codes, lower-cased: ClientError codes are "ThrottlingException", stream error events
# "throttlingException".
_RETRYABLE = {
    "throttlingexception", "servicequotaexceededexception", "serviceunavailableexception",
    "internalserverexception", "modeltimeoutexception", "modelnotreadyexception", "modelstreamerrorexception",
    "modelerrorexception", "requesttimeout", "requesttimeoutexception",
}
_CONFIGURATION = {"resourcenotfoundexception", "accessdeniedexception", "unrecognizedclientexception",
                  "expiredtokenexception"}
# ValidationException messages that are about the deployment's model setting, not the request.
_MODEL_SETTING = ("model identifier is invalid", "inference profile", "on-demand throughput", "end of its life",
                  "model id", "not authorized", "don't have access", "access to the model")
_STOP_REASONS = {"end_turn": "end_turn", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence",
                 "tool_use": "end_turn", "guardrail_intervened": "refusal", "content_filtered": "refusal",
                 "malformed_model_output": "malformed", "malformed_tool_use": "malformed",
                 "model_context_window_exceeded": "model_context_window_exceeded"}

ClientFor = Callable[[float], Any]


def map_error(exc: ClientError | BotoCoreError, model: str = "") -> ProviderError | ProviderRejected:
    """One Bedrock/botocore failure as the provider layer's error."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        lowered = code.lower()
        if lowered in _RETRYABLE or (isinstance(status, int) and (status >= 500 or status == 429)):
            return ProviderError(f"Bedrock is unavailable ({code}): {message}", engine=ENGINE, retryable=True,
                                 status=status)
        if (lowered in _CONFIGURATION or status in (401, 403)
                or (lowered == "validationexception" and any(m in message.lower() for m in _MODEL_SETTING))):
            return ProviderMisconfigured(
                f"The AI model {model!r} is not available to this deployment on Bedrock ({code}: retired, not "
                "enabled or not permitted); the operator must set BedrockModelId to an active model.",
                engine=ENGINE, model=model, status=status,
                operator_action=(
                    f"Bedrock said: {message[:300]}. Set BedrockModelId to an active model's inference profile "
                    "(docs/ai.md, Models), enable access to it in the Bedrock console, and keep "
                    "AiModelAccessPolicy allowing it."))
        return ProviderRejected(f"Bedrock refused the request ({code}): {message}", engine=ENGINE, status=status)
    if isinstance(exc, ParamValidationError):
        return ProviderMisconfigured(
            "The Bedrock request could not be sent: this deployment's AWS SDK is older than the code expects.",
            engine=ENGINE, model=model,
            operator_action=f"botocore refused the request's shape ({exc}); ship a newer boto3/botocore "
                            "with the layer.")
    # Read/connect timeouts, connection resets, endpoint unreachable, anything else on the wire.
    kind = "did not answer in time" if isinstance(exc, ReadTimeoutError) else "could not be reached"
    return ProviderError(f"Bedrock {kind}: {exc}", engine=ENGINE, retryable=True)


def _supports_output_config(client: Any) -> bool:
    """Whether this botocore knows Converse's ``outputConfig`` (the Lambda runtime's may be older)."""
    try:
        shape = client.meta.service_model.operation_model("Converse").input_shape
        return "outputConfig" in shape.members
    except Exception:  # a stand-in client in tests, or an unexpected model: use the forced tool
        return False


class BedrockProvider:
    engine: Engine = ENGINE

    def __init__(self, client: Any, model: str, *, prompt_caching: bool = True, timeout: float = 25.0) -> None:
        """``client``: a bedrock-runtime client, or a function of the read timeout (seconds) returning
        one, so each call's client reads no longer than the time left. ``timeout``: the longest one
        attempt may take (``AI_TIMEOUT_SECONDS``)."""
        self._client = client
        self.model = model
        self.timeout = timeout
        self.prompt_caching = prompt_caching and bedrock_supports_cache_point(model)
        self.last_read_timeout: float | None = None  # what the last call was given (logs and tests)

    def client_for(self, request: AiRequest) -> Any:
        read_timeout = self.attempt_timeout(request)
        self.last_read_timeout = read_timeout
        if hasattr(self._client, "converse") or self._client is None:
            return self._client
        return self._client(read_timeout)

    def attempt_timeout(self, request: AiRequest) -> float:
        """Whole seconds (the clients are cached per second), at most what is left before the deadline."""
        if request.deadline is None:
            return float(math.floor(self.timeout))
        left = math.floor(request.deadline.within(self.timeout))
        if left < 1:
            raise ProviderError("No time left to ask Bedrock.", engine=ENGINE, retryable=True)
        return float(left)

    # -- request ---------------------------------------------------------------------------
    def converse_params(self, request: AiRequest, *, output_config: bool = True) -> dict[str, Any]:
        """Converse parameters. ``output_config``: whether this client knows ``outputConfig``."""
        structured = request.json_schema is not None and output_config and supports_structured_output(
            self.model, ENGINE)
        texts = system_texts(request, schema_in_prompt=False)  # the schema travels as outputConfig or a tool
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
            "inferenceConfig": {"maxTokens": clamp_max_tokens(request.max_tokens, self.model, ENGINE),
                                "temperature": request.temperature},
        }
        if system:
            params["system"] = system
        if request.json_schema is not None:
            schema = strict_schema(request.json_schema)
            if structured:
                params["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
                    "schema": json.dumps(schema, separators=(",", ":")), "name": ANSWER_TOOL}}}}
            else:
                params["toolConfig"] = {
                    "tools": [{"toolSpec": {"name": ANSWER_TOOL, "description": "Give your answer.",
                                            "inputSchema": {"json": schema}}}],
                    "toolChoice": {"tool": {"name": ANSWER_TOOL}}}
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

    def _answer(self, request: AiRequest, text: str, usage: TokenUsage, stop: str) -> AiAnswer:
        searched = request.web_search and request.web_search_max_uses > 0
        return AiAnswer(text=text, engine=ENGINE, model=self.model, usage=usage,
                        stop_reason=_STOP_REASONS.get(stop, "end_turn"),
                        web_search="unavailable" if searched else None)

    def complete(self, request: AiRequest) -> AiAnswer:
        client = self.client_for(request)
        params = self.converse_params(request, output_config=_supports_output_config(client))
        try:
            response = client.converse(**params)
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc, self.model) from exc
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        parts: list[str] = []
        for block in blocks:
            if "text" in block:
                parts.append(block["text"])
            elif "toolUse" in block and block["toolUse"].get("name") == ANSWER_TOOL:
                parts.append(json.dumps(block["toolUse"].get("input", {}), ensure_ascii=False))
        return self._answer(request, "".join(parts), self._usage(response.get("usage")),
                            response.get("stopReason", ""))

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        client = self.client_for(request)
        params = self.converse_params(request, output_config=_supports_output_config(client))
        parts: list[str] = []
        usage: dict[str, Any] | None = None
        stop = "end_turn"
        try:
            response = client.converse_stream(**params)
            for event in response["stream"]:
                if "contentBlockDelta" in event:
                    delta = event["contentBlockDelta"].get("delta", {})
                    piece = delta.get("text") or delta.get("toolUse", {}).get("input", "")
                    if piece:
                        parts.append(piece)
                        yield piece
                elif "messageStop" in event:
                    stop = event["messageStop"].get("stopReason", "")
                elif "metadata" in event:
                    usage = event["metadata"].get("usage")
                if request.deadline is not None and request.deadline.remaining() <= 0:
                    raise ProviderError("Bedrock's answer did not finish in time.", engine=ENGINE, retryable=True)
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc, self.model) from exc
        text = "".join(parts)
        answer_usage = self._usage(usage) if usage else TokenUsage(
            input_tokens=sum(estimate_tokens(m["content"][0]["text"]) for m in params["messages"]),
            output_tokens=estimate_tokens(text))
        yield self._answer(request, text, answer_usage, stop)
