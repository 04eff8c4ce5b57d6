"""The Anthropic API through the official ``anthropic`` package.

``import anthropic`` costs seconds of cold start, so this module never imports it at module level:
the SDK is loaded by ``load_sdk()`` — when a provider is built with ``preload=True`` (during the
Lambda init phase of a function configured for the Anthropic API) or on the first call. A
function configured for Bedrock never loads it.

The API key comes from Secrets Manager (``parameters.get_secret``, cached for ``KEY_MAX_AGE``
seconds per execution environment); the secret is either the bare key or a JSON object with an
``api_key`` / ``apiKey`` / ``ANTHROPIC_API_KEY`` field. A rotated key is picked up within that time.

Errors are mapped once, here:

- 429 (rate limit), 529 (overloaded), 408, 5xx, timeouts and connection errors
  -> ``ProviderError(retryable=True)``;
- 401 / 402 / 403 (our key, billing or permissions: not the caller's fault) and a key that cannot
  be loaded -> ``ProviderError(retryable=False)``: not worth retrying here, but another engine can
  still answer, so the fallback applies;
- any other 4xx (the request itself is wrong) -> ``ProviderRejected``: no retry, no fallback.

The SDK (2.x) speaks API version 2026-10-21: the key goes out as ``Authorization: Bearer`` and
sampling parameters (temperature, top_p, top_k) are refused, so none are sent — the model's
default sampling applies; ``AiRequest.temperature`` is honoured by Bedrock only.

The SDK's own retries are kept small (``max_retries``, default 1): the fallback and the caller's
time budget decide what happens next, not a long SDK backoff.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from .caching import alternating, estimate_tokens, long_enough_to_cache, system_texts
from .types import AiAnswer, AiRequest, Engine, ProviderError, ProviderRejected, TokenUsage, UsageReport

ENGINE: Engine = "anthropic"
KEY_MAX_AGE = 300  # seconds a fetched API key is reused before Secrets Manager is asked again
WEB_SEARCH_TOOL = "web_search_20250305"
_RETRYABLE_TYPES = {"rate_limit_error", "overloaded_error", "api_error", "timeout_error"}
_ACCOUNT_STATUSES = {401, 402, 403}


def load_sdk() -> Any:
    import anthropic  # deliberately lazy: ~2 s of import time

    return anthropic


def secret_api_key(secret_name: str, *, max_age: int = KEY_MAX_AGE) -> str:
    """The API key stored in Secrets Manager, cached per execution environment."""
    from aws_lambda_powertools.utilities import parameters  # only Anthropic paths need it

    value = parameters.get_secret(secret_name, max_age=max_age)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    text = str(value).strip()
    if text.startswith("{"):
        data = json.loads(text)
        for key in ("api_key", "apiKey", "ANTHROPIC_API_KEY", "anthropic_api_key"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
        raise ValueError(f"secret {secret_name!r} is JSON without an api_key field")
    return text


def _error_type(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("type", ""))
    return ""


def map_error(exc: BaseException) -> ProviderError | ProviderRejected:
    """One SDK failure as the provider layer's error."""
    sdk = load_sdk()
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError(f"The Anthropic API did not answer in time: {exc}", engine=ENGINE, retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(f"The Anthropic API could not be reached: {exc}", engine=ENGINE, retryable=True)
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        kind = _error_type(exc.body)
        # A stream that fails mid-way arrives as an error event on a 200 response: judge it by type.
        if status in (408, 429) or status >= 500 or kind in _RETRYABLE_TYPES:
            return ProviderError(f"The Anthropic API is unavailable ({status} {kind}).", engine=ENGINE,
                                 retryable=True, status=status)
        if status in _ACCOUNT_STATUSES:
            return ProviderError(f"The Anthropic API refused our credentials or account ({status} {kind}).",
                                 engine=ENGINE, retryable=False, status=status)
        return ProviderRejected(f"The Anthropic API refused the request ({status} {kind}): {exc.message}",
                                engine=ENGINE, status=status)
    return ProviderError(f"The Anthropic API client failed: {exc}", engine=ENGINE, retryable=False)


class AnthropicProvider:
    engine: Engine = ENGINE

    def __init__(self, model: str, *, secret_name: str = "", api_key: Callable[[], str] | None = None,
                 timeout: float = 25.0, max_retries: int = 1, http_client: Any = None,
                 base_url: str | None = None, preload: bool = False) -> None:
        if not secret_name and api_key is None:
            raise ValueError("AnthropicProvider needs a secret name or an api_key loader")
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = api_key or (lambda: secret_api_key(secret_name))
        self._http_client = http_client
        self._base_url = base_url
        self._client: Any = None
        self._client_key: str | None = None
        if preload:
            load_sdk()

    # -- client ----------------------------------------------------------------------------
    def client(self) -> Any:
        """The SDK client for the current key (rebuilt when the cached secret changes)."""
        try:
            key = self._api_key()
        except Exception as exc:  # any failure to get the key: this engine cannot answer
            raise ProviderError(f"The Anthropic API key could not be loaded: {exc}", engine=ENGINE,
                                retryable=False) from exc
        if self._client is None or key != self._client_key:
            sdk = load_sdk()
            self._client = sdk.Anthropic(api_key=key, max_retries=self.max_retries, timeout=self.timeout,
                                         http_client=self._http_client, base_url=self._base_url)
            self._client_key = key
        return self._client

    # -- request ---------------------------------------------------------------------------
    def message_params(self, request: AiRequest) -> dict[str, Any]:
        texts = system_texts(request)
        system: list[dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
        if system and long_enough_to_cache(self.model, texts):
            system[-1]["cache_control"] = {"type": "ephemeral"}
        turns = alternating(request.messages)
        if not turns or turns[-1].role != "user":
            raise ProviderRejected("The conversation must end with a user message.", engine=ENGINE)
        messages: list[dict[str, Any]] = [
            {"role": t.role, "content": [{"type": "text", "text": t.text}]} for t in turns]
        # Conversation caching: the history before the newest message is a stable prefix too.
        if len(turns) > 2 and long_enough_to_cache(self.model, texts + [t.text for t in turns[:-1]]):
            messages[-2]["content"][-1]["cache_control"] = {"type": "ephemeral"}
        params: dict[str, Any] = {
            # No temperature: the API version this SDK speaks (2026-10-21) refuses sampling parameters
            # with a 400, and the SDK no longer accepts them. ANTHROPIC_TEMPERATURE applies to Bedrock.
            "model": self.model, "max_tokens": request.max_tokens, "messages": messages,
            "timeout": min(self.timeout, request.timeout_seconds) if request.timeout_seconds else self.timeout,
        }
        if system:
            params["system"] = system
        if request.web_search and request.web_search_max_uses > 0:
            params["tools"] = [{"type": WEB_SEARCH_TOOL, "name": "web_search",
                                "max_uses": request.web_search_max_uses}]
        return params

    # -- answers ---------------------------------------------------------------------------
    @staticmethod
    def _usage(raw: Any) -> TokenUsage:
        server = getattr(raw, "server_tool_use", None)
        return TokenUsage(
            input_tokens=int(getattr(raw, "input_tokens", 0) or 0),
            output_tokens=int(getattr(raw, "output_tokens", 0) or 0),
            cache_read_tokens=int(getattr(raw, "cache_read_input_tokens", 0) or 0),
            cache_write_tokens=int(getattr(raw, "cache_creation_input_tokens", 0) or 0),
            web_searches=int(getattr(server, "web_search_requests", 0) or 0),
        )

    def complete(self, request: AiRequest) -> AiAnswer:
        params = self.message_params(request)
        client = self.client()
        sdk = load_sdk()
        try:
            message = client.messages.create(**params)
        except sdk.AnthropicError as exc:
            raise map_error(exc) from exc
        text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")
        return AiAnswer(text=text, engine=ENGINE, model=str(message.model or self.model),
                        usage=self._usage(message.usage), stop_reason=str(message.stop_reason or "end_turn"))

    def stream(self, request: AiRequest) -> Iterator[str | UsageReport | AiAnswer]:
        params = self.message_params(request)
        client = self.client()
        sdk = load_sdk()
        parts: list[str] = []
        model = self.model
        start_usage: Any = None
        end_usage: Any = None
        stop = "end_turn"
        try:
            events = client.messages.create(stream=True, **params)
            with events:
                for event in events:
                    kind = getattr(event, "type", "")
                    if kind == "message_start":
                        model = str(event.message.model or self.model)
                        start_usage = event.message.usage
                        # The input is billed from here on: metering needs it if the stream ends early.
                        yield UsageReport(engine=ENGINE, model=model, usage=self._usage(start_usage))
                    elif kind == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
                        if event.delta.text:
                            parts.append(event.delta.text)
                            yield event.delta.text
                    elif kind == "message_delta":
                        end_usage = event.usage
                        stop = str(event.delta.stop_reason or stop)
        except sdk.AnthropicError as exc:
            raise map_error(exc) from exc
        text = "".join(parts)
        usage = self._usage(start_usage) if start_usage is not None else TokenUsage()
        if end_usage is not None:  # message_delta carries the final output (and server-tool) counts
            final = self._usage(end_usage)
            usage = TokenUsage(
                input_tokens=final.input_tokens or usage.input_tokens,
                output_tokens=final.output_tokens or estimate_tokens(text),
                cache_read_tokens=final.cache_read_tokens or usage.cache_read_tokens,
                cache_write_tokens=final.cache_write_tokens or usage.cache_write_tokens,
                web_searches=final.web_searches or usage.web_searches,
            )
        yield AiAnswer(text=text, engine=ENGINE, model=model, usage=usage, stop_reason=stop)
