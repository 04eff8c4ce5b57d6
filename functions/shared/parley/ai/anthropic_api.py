"""The Anthropic API through the official ``anthropic`` package.

``import anthropic`` costs seconds of cold start, so this module never imports it at module level:
the SDK is loaded by ``load_sdk()`` — when a provider is built with ``preload=True`` (during the
Lambda init phase of a function configured for the Anthropic API) or on the first call. A
function configured for Bedrock never loads it.

The API key comes from Secrets Manager (``parameters.get_secret``, cached for ``KEY_MAX_AGE``
seconds per execution environment); the secret is either the bare key or a JSON object with an
``api_key`` / ``apiKey`` / ``ANTHROPIC_API_KEY`` field. A rotated key is picked up within that time.

Errors are mapped once, here:

- 429 (rate limit, with the ``retry-after`` it asked for), 529 (overloaded), 408, 5xx, timeouts and
  connection errors -> ``ProviderError(retryable=True)``;
- 404 ``not_found_error`` (a retired or mistyped model), 401 / 402 / 403 (our key, billing or
  permissions) and a key that cannot be loaded -> ``ProviderMisconfigured``: the deployment's
  fault, never the caller's - not retried here, but another engine can still answer, so the
  fallback applies, and the operator is told what to change;
- any other 4xx (the request itself is wrong) -> ``ProviderRejected``: no retry, no fallback.

The SDK (2.x) speaks API version 2026-10-21: the key goes out as ``Authorization: Bearer`` and
sampling parameters (temperature, top_p, top_k) are refused, so none are sent - the model's
default sampling applies; ``AiRequest.temperature`` is honoured by Bedrock only.

Time: the SDK's own retries are off (``max_retries=0``) - it would honour any ``retry-after``, 45 s
included, inside a 29 s function. Each call's timeout comes from the request's deadline, and the
fallback layer decides on retries with what is left (``fallback.py``).

Answers: a JSON schema goes out as structured output (``output_config.format``) for the models
that have it; with web search on it stays in the prompt and the answer is read from the text after
the last search result. A turn the API pauses (``pause_turn``: server-side web search still
working) is continued, up to ``MAX_CONTINUATIONS`` times and within the deadline. A refusal comes
back as an answer (``stop_reason="refusal"``, with its usage, so it is metered) for the caller to
turn into a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from parley.ai.caching import alternating, estimate_tokens, long_enough_to_cache, system_texts
from parley.ai.errors import ProviderError, ProviderMisconfigured, ProviderRejected
from parley.ai.models import clamp_max_tokens, supports_structured_output
from parley.ai.schema import strict_schema
from parley.ai.types import AiAnswer, AiRequest, Engine, TokenUsage, UsageReport

ENGINE: Engine = "anthropic"
KEY_MAX_AGE = 300  # seconds a fetched API key is reused before Secrets Manager is asked again
WEB_SEARCH_TOOL = "web_search_20250305"
MAX_CONTINUATIONS = 3  # pause_turn continuations of one answer
MIN_CONTINUATION_SECONDS = 2.0
_RETRYABLE_TYPES = {"rate_limit_error", "overloaded_error", "api_error", "timeout_error"}
_ACCOUNT_STATUSES = {401: "authentication", 402: "billing", 403: "permission"}
_SEARCH_RESULTS = {"web_search_tool_result", "web_fetch_tool_result"}


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


def retry_after(headers: Any) -> float | None:
    """Seconds the API asked us to wait (``retry-after-ms`` or ``retry-after``), when it said."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            continue  # an HTTP date: rare from this API; treat as unspecified
    return None


def map_error(exc: BaseException, model: str = "") -> ProviderError | ProviderRejected:
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
                                 retryable=True, status=status, retry_after=retry_after(exc.response.headers))
        if status == 404 or kind == "not_found_error":
            return ProviderMisconfigured(
                f"The AI model {model!r} is not available on the Anthropic API (retired or mistyped); the operator "
                "must set AnthropicModelId (or ProofreadingModels) to an active model.",
                engine=ENGINE, model=model, status=status,
                operator_action=f"The Anthropic API answered {status} {kind} for {model!r}: {exc.message[:300]}. "
                                "Choose an active model (docs/ai.md, Models).")
        if status in _ACCOUNT_STATUSES:
            return ProviderMisconfigured(
                f"The Anthropic API refused this deployment's {_ACCOUNT_STATUSES[status]} ({status}); the operator "
                "must check its API key and account.",
                engine=ENGINE, model=model, status=status,
                operator_action=f"The Anthropic API answered {status} {kind}: {exc.message[:300]}. Check the key in "
                                f"the AnthropicSecretName secret, the account's billing and its access to {model!r}.")
        return ProviderRejected(f"The Anthropic API refused the request ({status} {kind}): {exc.message}",
                                engine=ENGINE, status=status)
    return ProviderError(f"The Anthropic API client failed: {exc}", engine=ENGINE, retryable=False)


@dataclass
class _Turn:
    """One answer being assembled across ``pause_turn`` continuations."""

    params: dict[str, Any]  # the next message's request: the first, then each continuation's
    blocks: list[dict[str, Any]] = field(default_factory=list)  # every content block, for continuing
    text: list[str] = field(default_factory=list)
    after_search: list[str] | None = None  # text after the last search result (None: no search yet)
    usage: TokenUsage = field(default_factory=TokenUsage)
    model: str = ""
    stop: str = "end_turn"
    stop_details: Any = None
    continuations: int = 0

    def __post_init__(self) -> None:
        self.asked: list[dict[str, Any]] = self.params["messages"]

    def add_message(self, message: Any, usage: TokenUsage, *, model: str) -> None:
        """One message of the answer (the whole of it, or up to a pause)."""
        self.model = str(message.model or model)
        for block in message.content:
            kind = getattr(block, "type", "")
            self.blocks.append(block.to_dict() if hasattr(block, "to_dict") else dict(block))
            if kind in _SEARCH_RESULTS:
                self.after_search = []
            elif kind == "text":
                self.text.append(block.text)
                if self.after_search is not None:
                    self.after_search.append(block.text)
        self.usage += usage
        self.stop = str(message.stop_reason or "end_turn")
        self.stop_details = getattr(message, "stop_details", None)

    def carry_on(self, timeout: float) -> None:
        """Ask again with the paused assistant content (every block so far) appended as-is, so the
        model carries on where it stopped."""
        self.continuations += 1
        self.params = {**self.params, "messages": [*self.asked, {"role": "assistant", "content": list(self.blocks)}],
                       "timeout": timeout}


class AnthropicProvider:
    engine: Engine = ENGINE

    def __init__(self, model: str, *, secret_name: str = "", api_key: Callable[[], str] | None = None,
                 timeout: float = 25.0, max_retries: int = 0, http_client: Any = None,
                 base_url: str | None = None, preload: bool = False) -> None:
        """``timeout``: the longest one attempt may take (``AI_TIMEOUT_SECONDS``), shortened to the
        request's deadline. ``max_retries``: the SDK's own retries - 0 in production, so retries are
        decided by the fallback layer against the deadline."""
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
            raise ProviderMisconfigured(
                "The Anthropic API key could not be loaded; the operator must create the AnthropicSecretName secret.",
                engine=ENGINE, model=self.model,
                operator_action=f"Loading the key failed: {exc}. Create the AnthropicSecretName secret (the bare "
                                "key, or JSON with api_key) and let the function read it.") from exc
        if self._client is None or key != self._client_key:
            sdk = load_sdk()
            self._client = sdk.Anthropic(api_key=key, max_retries=self.max_retries, timeout=self.timeout,
                                         http_client=self._http_client, base_url=self._base_url)
            self._client_key = key
        return self._client

    # -- request ---------------------------------------------------------------------------
    def uses_structured_output(self, request: AiRequest) -> bool:
        """The schema as ``output_config.format``: for models that have it, and not with web search
        (its answer follows a preamble and search results; it is read from the text after them)."""
        return (request.json_schema is not None and not self._searches(request)
                and supports_structured_output(self.model, ENGINE))

    @staticmethod
    def _searches(request: AiRequest) -> bool:
        return request.web_search and request.web_search_max_uses > 0

    def message_params(self, request: AiRequest) -> dict[str, Any]:
        structured = self.uses_structured_output(request)
        texts = system_texts(request, schema_in_prompt=not structured)
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
            "model": self.model, "max_tokens": clamp_max_tokens(request.max_tokens, self.model, ENGINE),
            "messages": messages, "timeout": self.attempt_timeout(request),
        }
        if system:
            params["system"] = system
        if structured:
            assert request.json_schema is not None
            params["output_config"] = {"format": {"type": "json_schema",
                                                  "schema": strict_schema(request.json_schema)}}
        if self._searches(request):
            params["tools"] = [{"type": WEB_SEARCH_TOOL, "name": "web_search",
                                "max_uses": request.web_search_max_uses}]
        return params

    def attempt_timeout(self, request: AiRequest) -> float:
        """This attempt's timeout: the engine's own, or what is left before the deadline."""
        if request.deadline is None:
            return self.timeout
        left = request.deadline.within(self.timeout)
        if left <= 0:
            raise ProviderError("No time left to ask the Anthropic API.", engine=ENGINE, retryable=True)
        return left

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

    def _paused(self, request: AiRequest, turn: _Turn) -> bool:
        """True when the model paused its answer (``pause_turn``, a long web search) and there is time
        to let it carry on: ``turn.params`` then ask for the rest."""
        if turn.stop != "pause_turn" or turn.continuations >= MAX_CONTINUATIONS:
            return False
        if request.deadline is not None and request.deadline.remaining() < MIN_CONTINUATION_SECONDS:
            return False
        turn.carry_on(self.attempt_timeout(request))
        return True

    def _answer(self, request: AiRequest, turn: _Turn) -> AiAnswer:
        searched, details = self._searches(request), turn.stop_details
        refusal = None
        if turn.stop == "refusal":
            refusal = str(getattr(details, "explanation", None) or getattr(details, "category", None) or "") or None
        return AiAnswer(
            text="".join(turn.text), engine=ENGINE, model=turn.model or self.model, usage=turn.usage,
            stop_reason=turn.stop, answer_text="".join(turn.after_search) if turn.after_search is not None else None,
            web_search=("used" if turn.usage.web_searches else "not used") if searched else None,
            refusal=refusal)

    def complete(self, request: AiRequest) -> AiAnswer:
        turn, client, sdk = _Turn(self.message_params(request)), self.client(), load_sdk()
        while True:
            try:
                message = client.messages.create(**turn.params)
            except sdk.AnthropicError as exc:
                raise map_error(exc, self.model) from exc
            turn.add_message(message, self._usage(message.usage), model=self.model)
            if not self._paused(request, turn):
                return self._answer(request, turn)

    def _usage_so_far(self, turn: _Turn, start: Any) -> UsageReport:
        """The usage of the answer so far when a message starts: the earlier continuations' and this
        message's input (``parley.ai.metering`` meters it if the stream ends before its answer)."""
        return UsageReport(engine=ENGINE, model=str(start.message.model or self.model),
                           usage=turn.usage + self._usage(start.message.usage))

    def stream(self, request: AiRequest) -> Iterator[str | UsageReport | AiAnswer]:
        turn, client, sdk = _Turn(self.message_params(request)), self.client(), load_sdk()
        while True:
            try:
                with client.messages.stream(**turn.params) as events:
                    for event in events:
                        kind = getattr(event, "type", "")
                        if kind == "message_start":  # the input is billed from here on: metering needs it
                            yield self._usage_so_far(turn, event)  # if the stream ends early
                        if kind == "text" and event.text:
                            yield event.text
                        if request.deadline is not None and request.deadline.remaining() <= 0:
                            raise ProviderError("The Anthropic API's answer did not finish in time.",
                                                engine=ENGINE, retryable=True)
                    message = events.get_final_message()
            except sdk.AnthropicError as exc:
                raise map_error(exc, self.model) from exc
            usage = self._usage(message.usage)
            turn.add_message(message, usage, model=self.model)
            if not usage.output_tokens:  # a stream cut short may report none: count what it showed
                turn.usage += TokenUsage(output_tokens=estimate_tokens("".join(turn.text)))
            if not self._paused(request, turn):
                yield self._answer(request, turn)
                return
