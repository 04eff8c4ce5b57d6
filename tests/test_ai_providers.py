"""The AI provider layer: Bedrock (botocore Stubber), the Anthropic API (the real ``anthropic`` client
over an httpx mock transport), the fallback between them, the circuit breaker, and metering.

No network: Bedrock answers come from a Stubber, Anthropic answers from ``httpx2.MockTransport``
(the HTTP library under anthropic 2.x), the secret from moto.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx2
import pytest
from botocore.exceptions import EventStreamError, ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws

from parley.ai.anthropic_api import AnthropicProvider, secret_api_key
from parley.ai.bedrock import BedrockProvider
from parley.ai.caching import min_cacheable_tokens
from parley.ai.factory import assemble
from parley.ai.fallback import CircuitBreaker, FallbackProvider
from parley.ai.metering import MeteredProvider
from parley.ai.types import AiAnswer, AiRequest, ProviderError, ProviderRejected, TokenUsage, Turn, UsageReport
from parley.config import AiEnv
from parley.errors import QuotaExceeded
from parley.pricing import DEFAULT_PRICES
from parley.usage import UsageEvent

ROOT = Path(__file__).resolve().parent.parent
HAIKU3 = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "claude-sonnet-4-6"
OWNER = "DEVICE#provider-tests-01"


def drain(stream: Iterator[Any], into: list[Any]) -> None:
    """Collect a stream's items until it ends or raises (usage reports, for metering, are not items)."""
    for item in stream:
        if not isinstance(item, UsageReport):
            into.append(item)


def ask(text: str = "I visited my grandmother yesterday.", **kw: Any) -> AiRequest:
    return AiRequest(system=("You are a tutor.",), messages=(Turn("user", text),), **kw)


# -- Bedrock ------------------------------------------------------------------------------------
def bedrock_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="y")  # dummy credentials for the Stubber


def converse_ok(text: str = "Nice! What did you talk about?", **usage: int) -> dict[str, Any]:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49, **usage},
            "metrics": {"latencyMs": 300}}


def add_stream(stubber: Stubber, events: list[Any]) -> None:
    """Queue a ConverseStream answer. The Stubber validates the response shape, which an event
    stream cannot pass, so the stream is swapped in after validation."""
    response: dict[str, Any] = {"stream": {}}
    stubber.add_response("converse_stream", response)
    response["stream"] = _events(events)


def _events(events: list[Any]) -> Iterator[dict[str, Any]]:
    for event in events:
        if isinstance(event, Exception):
            raise event
        yield event


def stream_events(*deltas: str) -> list[Any]:
    return [{"messageStart": {"role": "assistant"}},
            *({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": d}}} for d in deltas),
            {"contentBlockStop": {"contentBlockIndex": 0}}, {"messageStop": {"stopReason": "end_turn"}},
            {"metadata": {"usage": {"inputTokens": 30, "outputTokens": 7, "totalTokens": 37},
                          "metrics": {"latencyMs": 100}}}]


def test_bedrock_converse_sends_the_request_and_maps_the_answer() -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_response("converse", converse_ok(cacheReadInputTokens=0), expected_params={
            "modelId": HAIKU3,
            "system": [{"text": "You are a tutor."}],
            "messages": [{"role": "user", "content": [{"text": "I visited my grandmother yesterday."}]}],
            "inferenceConfig": {"maxTokens": 300, "temperature": 0.7},
        })
        answer = BedrockProvider(client, HAIKU3).complete(ask())
        stubber.assert_no_pending_responses()
    assert answer == AiAnswer(text="Nice! What did you talk about?", engine="bedrock", model=HAIKU3,
                              usage=TokenUsage(input_tokens=40, output_tokens=9))


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("ThrottlingException", 429, ProviderError),
    ("ServiceUnavailableException", 503, ProviderError),
    ("InternalServerException", 500, ProviderError),
    ("ModelTimeoutException", 408, ProviderError),
    ("ValidationException", 400, ProviderRejected),
    ("AccessDeniedException", 403, ProviderRejected),
    ("ResourceNotFoundException", 404, ProviderRejected),
])
def test_bedrock_errors_are_mapped(code: str, status: int, expected: type[Exception]) -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("converse", service_error_code=code, http_status_code=status)
        with pytest.raises(expected) as caught:
            BedrockProvider(client, HAIKU3).complete(ask())
    assert caught.value.engine == "bedrock"  # type: ignore[attr-defined]
    if expected is ProviderError:
        assert caught.value.retryable  # type: ignore[attr-defined]


def test_bedrock_read_timeout_is_retryable() -> None:
    class Slow:
        def converse(self, **_: Any) -> Any:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    with pytest.raises(ProviderError) as caught:
        BedrockProvider(Slow(), HAIKU3).complete(ask())
    assert caught.value.retryable and "in time" in caught.value.message


def test_bedrock_stream_yields_deltas_then_one_answer() -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        add_stream(stubber, stream_events("Great", " choice!"))
        items = list(BedrockProvider(client, HAIKU3).stream(ask()))
    assert items[:2] == ["Great", " choice!"]
    assert len(items) == 3 and isinstance(items[2], AiAnswer)
    assert items[2].text == "Great choice!" and items[2].usage.output_tokens == 7


def test_bedrock_stream_error_event_mid_way_is_a_provider_error() -> None:
    client = bedrock_client()
    broken = EventStreamError({"Error": {"Code": "throttlingException", "Message": "slow down"}}, "ConverseStream")
    with Stubber(client) as stubber:
        add_stream(stubber, [*stream_events("Half")[:2], broken])
        got: list[Any] = []
        with pytest.raises(ProviderError) as caught:
            drain(BedrockProvider(client, HAIKU3).stream(ask()), got)
    assert got == ["Half"] and caught.value.retryable


def test_bedrock_cache_point_only_for_models_that_support_it_and_long_prefixes() -> None:
    long_system = ("x" * 4 * 2400,)  # ~2400 tokens: above every model's minimum
    request = AiRequest(system=long_system, messages=(Turn("user", "hi"),))
    cached = BedrockProvider(None, "anthropic.claude-3-5-haiku-20241022-v1:0").converse_params(request)
    assert cached["system"][-1] == {"cachePoint": {"type": "default"}}
    plain = BedrockProvider(None, HAIKU3).converse_params(request)  # Claude 3 Haiku has no cachePoint
    assert all("cachePoint" not in block for block in plain["system"])
    short = BedrockProvider(None, "anthropic.claude-3-5-haiku-20241022-v1:0").converse_params(ask())
    assert all("cachePoint" not in block for block in short["system"])


# -- Anthropic ----------------------------------------------------------------------------------
Handler = Callable[[httpx2.Request], httpx2.Response]


class FakeAnthropic:
    """An httpx mock transport speaking the Messages API; records what it was sent."""

    def __init__(self, *responses: Handler | httpx2.Response) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx2.Headers] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(json.loads(request.content))
        self.headers.append(request.headers)
        nxt = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        return nxt(request) if callable(nxt) else nxt

    def provider(self, model: str = SONNET, **kw: Any) -> AnthropicProvider:
        return AnthropicProvider(model, api_key=lambda: "sk-ant-test", max_retries=0,
                                 http_client=httpx2.Client(transport=httpx2.MockTransport(self)), **kw)


def message_json(text: str = "Sounds lovely! What did you cook?", **usage: Any) -> httpx2.Response:
    return httpx2.Response(200, json={
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 50, "output_tokens": 12, **usage}})


def status(code: int, kind: str) -> httpx2.Response:
    return httpx2.Response(code, json={"type": "error", "error": {"type": kind, "message": kind}})


def timeout(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ReadTimeout("timed out", request=request)


def sse(*events: dict[str, Any]) -> httpx2.Response:
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


START = {"type": "message_start", "message": {
    "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 60, "output_tokens": 1}}}
BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def delta(text: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


END = [{"type": "content_block_stop", "index": 0},
       {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 8}},
       {"type": "message_stop"}]
OVERLOADED_EVENT = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_anthropic_complete_sends_the_request_and_maps_usage() -> None:
    fake = FakeAnthropic(message_json(cache_read_input_tokens=0, cache_creation_input_tokens=0,
                                      server_tool_use={"web_search_requests": 2, "web_fetch_requests": 0}))
    answer = fake.provider().complete(ask(max_tokens=300, temperature=0.5, web_search=True, web_search_max_uses=3))
    sent = fake.requests[0]
    assert sent["model"] == SONNET and sent["max_tokens"] == 300
    assert "temperature" not in sent  # API 2026-10-21 refuses sampling parameters with a 400
    assert sent["system"] == [{"type": "text", "text": "You are a tutor."}]  # too short to cache
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "I visited my grandmother yesterday."}]}]
    assert sent["tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    assert fake.headers[0]["authorization"] == "Bearer sk-ant-test"
    assert answer.engine == "anthropic" and answer.text == "Sounds lovely! What did you cook?"
    assert answer.usage == TokenUsage(input_tokens=50, output_tokens=12, web_searches=2)


@pytest.mark.parametrize(("model", "minimum", "cached"), [
    ("claude-opus-4-1", 1024, True),  # ~1500 tokens is enough for a 1024-token model
    ("claude-sonnet-4-6", 2048, False),  # ... but not for 2048
    ("claude-haiku-4-5", 4096, False),  # ... nor for 4096
    ("anthropic.claude-3-haiku-20240307-v1:0", 2048, False),
    ("claude-sonnet-7", 1024, True),  # an unknown model: its class's minimum
])
def test_anthropic_cache_control_only_on_a_long_enough_last_system_block(model: str, minimum: int,
                                                                         cached: bool) -> None:
    fake = FakeAnthropic(message_json())
    request = AiRequest(system=("Instructions. " * 50, "Reference. " * 545), messages=(Turn("user", "hi"),))
    fake.provider(model).complete(request)
    system = fake.requests[0]["system"]
    assert "cache_control" not in system[0]
    assert (system[-1].get("cache_control") == {"type": "ephemeral"}) is cached
    assert min_cacheable_tokens(model) == minimum


def test_anthropic_long_history_marks_the_previous_turn_cacheable() -> None:
    fake = FakeAnthropic(message_json())
    history = tuple(Turn("user" if i % 2 == 0 else "assistant", "words " * 300) for i in range(8))
    fake.provider().complete(AiRequest(system=("Tutor.",), messages=(*history, Turn("user", "and now?"))))
    messages = fake.requests[0]["messages"]
    assert messages[-2]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in messages[-1]["content"][-1]


@pytest.mark.parametrize(("response", "retryable"), [
    (status(429, "rate_limit_error"), True),
    (status(529, "overloaded_error"), True),
    (status(500, "api_error"), True),
    (timeout, True),
    (status(401, "authentication_error"), False),
])
def test_anthropic_failures_that_another_engine_can_cover(response: Any, retryable: bool) -> None:
    with pytest.raises(ProviderError) as caught:
        FakeAnthropic(response).provider().complete(ask())
    assert caught.value.engine == "anthropic" and caught.value.retryable is retryable


def test_anthropic_400_is_rejected() -> None:
    with pytest.raises(ProviderRejected) as caught:
        FakeAnthropic(status(400, "invalid_request_error")).provider().complete(ask())
    assert caught.value.upstream_status == 400


def test_anthropic_stream_yields_deltas_then_the_answer_with_usage() -> None:
    fake = FakeAnthropic(sse(START, BLOCK, delta("Hello"), delta(" there!"), *END))
    items = list(fake.provider().stream(ask()))
    report = items[0]  # the input the engine announced at message_start, for metering an early end
    assert isinstance(report, UsageReport) and report.usage.input_tokens == 60
    assert items[1:3] == ["Hello", " there!"]
    final = items[-1]
    assert isinstance(final, AiAnswer) and final.text == "Hello there!"
    assert final.usage.input_tokens == 60 and final.usage.output_tokens == 8
    assert fake.requests[0]["stream"] is True


def test_anthropic_key_comes_from_secrets_manager() -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="test/anthropic-plain", SecretString="sk-ant-plain")
        secrets.create_secret(Name="test/anthropic-json", SecretString=json.dumps({"api_key": "sk-ant-json"}))
        assert secret_api_key("test/anthropic-plain") == "sk-ant-plain"
        assert secret_api_key("test/anthropic-json") == "sk-ant-json"
        fake = FakeAnthropic(message_json())
        provider = AnthropicProvider(SONNET, secret_name="test/anthropic-json", max_retries=0,
                                     http_client=httpx2.Client(transport=httpx2.MockTransport(fake)))
        provider.complete(ask())
    assert fake.headers[0]["authorization"] == "Bearer sk-ant-json"


def test_anthropic_missing_secret_is_an_error_the_fallback_covers() -> None:
    with mock_aws():
        provider = AnthropicProvider(SONNET, secret_name="test/does-not-exist", max_retries=0)
        with pytest.raises(ProviderError) as caught:
            provider.complete(ask())
    assert not caught.value.retryable and "key" in caught.value.message


# -- fallback and breaker -----------------------------------------------------------------------
class Metrics:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, name: str, engine: str) -> None:
        self.seen.append((name, engine))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stubbed_bedrock(*responses: dict[str, Any]) -> tuple[BedrockProvider, Stubber]:
    client = bedrock_client()
    stubber = Stubber(client)
    for response in responses:
        stubber.add_response("converse", response)
    stubber.activate()
    return BedrockProvider(client, HAIKU3), stubber


@pytest.mark.parametrize("failure", [status(429, "rate_limit_error"), status(529, "overloaded_error"), timeout],
                         ids=["429", "529", "timeout"])
def test_fallback_to_bedrock_when_anthropic_cannot_answer(failure: Any) -> None:
    fake = FakeAnthropic(failure)
    bedrock, stubber = stubbed_bedrock(converse_ok("Bedrock here."))
    metrics = Metrics()
    answer = FallbackProvider(fake.provider(), bedrock, CircuitBreaker(), emit=metrics).complete(ask())
    stubber.assert_no_pending_responses()
    assert (answer.engine, answer.fallback_from, answer.text) == ("bedrock", "anthropic", "Bedrock here.")
    assert metrics.seen == [("ProviderCalls", "anthropic"), ("ProviderFailures", "anthropic"),
                            ("ProviderCalls", "bedrock"), ("ProviderFallbacks", "anthropic")]


def test_no_fallback_on_the_callers_own_400() -> None:
    bedrock, stubber = stubbed_bedrock(converse_ok())
    breaker = CircuitBreaker(threshold=1)
    with pytest.raises(ProviderRejected):
        FallbackProvider(FakeAnthropic(status(400, "invalid_request_error")).provider(), bedrock, breaker,
                         emit=Metrics()).complete(ask())
    with pytest.raises(AssertionError):
        stubber.assert_no_pending_responses()  # Bedrock was never asked
    assert breaker.state == "closed"  # our mistake says nothing about the engine's health


def test_without_a_secondary_the_error_reaches_the_caller() -> None:
    with pytest.raises(ProviderError):
        FallbackProvider(FakeAnthropic(status(529, "overloaded_error")).provider(), None, CircuitBreaker(),
                         emit=Metrics()).complete(ask())


def test_stream_falls_back_before_the_first_token() -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        add_stream(stubber, stream_events("From", " Bedrock"))
        provider = FallbackProvider(FakeAnthropic(status(529, "overloaded_error")).provider(),
                                    BedrockProvider(client, HAIKU3), CircuitBreaker(), emit=Metrics())
        items = list(provider.stream(ask()))
    assert items[:2] == ["From", " Bedrock"]
    assert isinstance(items[-1], AiAnswer) and items[-1].fallback_from == "anthropic"


def test_stream_failing_mid_way_raises_and_does_not_switch_engines() -> None:
    fake = FakeAnthropic(sse(START, BLOCK, delta("The answer is"), OVERLOADED_EVENT))
    bedrock, _ = stubbed_bedrock()
    metrics = Metrics()
    got: list[Any] = []
    with pytest.raises(ProviderError) as caught:
        drain(FallbackProvider(fake.provider(), bedrock, CircuitBreaker(), emit=metrics).stream(ask()), got)
    assert got == ["The answer is"]  # what reached the caller stays the only text
    assert caught.value.retryable and caught.value.engine == "anthropic"
    assert ("ProviderCalls", "bedrock") not in metrics.seen


def test_breaker_opens_skips_the_primary_then_tries_it_again_after_the_cool_down() -> None:
    fake = FakeAnthropic(status(529, "overloaded_error"), status(529, "overloaded_error"), message_json("Back!"))
    bedrock, _ = stubbed_bedrock(converse_ok("b1"), converse_ok("b2"), converse_ok("b3"))
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, cooldown=30, clock=clock)
    provider = FallbackProvider(fake.provider(), bedrock, breaker, emit=Metrics())

    assert [provider.complete(ask()).text for _ in range(2)] == ["b1", "b2"]
    assert len(fake.requests) == 2 and breaker.state == "open"

    assert provider.complete(ask()).text == "b3"  # open: Anthropic is not called at all
    assert len(fake.requests) == 2

    clock.now += 31  # cool-down over: one trial call, which succeeds and closes the breaker
    answer = provider.complete(ask())
    assert (answer.engine, answer.text, breaker.state) == ("anthropic", "Back!", "closed")


def test_breaker_reopens_when_the_trial_call_fails() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(3):
        breaker.failure()
    assert not breaker.allow()
    clock.now += 11
    assert breaker.state == "half-open" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open"


# -- metering -----------------------------------------------------------------------------------
class Publisher:
    prices = DEFAULT_PRICES

    def __init__(self, fail: bool = False) -> None:
        self.events: list[UsageEvent] = []
        self.fail = fail

    def publish(self, event: UsageEvent) -> None:
        if self.fail:
            raise RuntimeError("bus down")
        self.events.append(event)


class Quota:
    def __init__(self, over: bool) -> None:
        self.over = over
        self.checked: list[str] = []

    def reserve(self, owner: str, bound: Any, *, operation: str) -> None:
        self.checked.append(owner)
        if self.over:
            raise QuotaExceeded("Monthly quota reached.")

    def release(self, reservation: Any) -> bool:
        return False


def metered(provider: Any, publisher: Any, quota: Any = None) -> MeteredProvider:
    return MeteredProvider(provider, owner=OWNER, product="tutor", operation="chat", publisher=publisher,
                           quota=quota)


def test_metering_publishes_one_event_naming_the_engine_that_really_answered() -> None:
    bedrock, _ = stubbed_bedrock(converse_ok(cacheReadInputTokens=5, cacheWriteInputTokens=3))
    publisher = Publisher()
    provider = FallbackProvider(FakeAnthropic(status(429, "rate_limit_error")).provider(), bedrock,
                                CircuitBreaker(), emit=Metrics())
    answer = metered(provider, publisher, Quota(over=False)).complete(ask())
    assert len(publisher.events) == 1
    event = publisher.events[0]
    assert (event.engine, event.model, event.owner, event.product, event.operation) == (
        "bedrock", HAIKU3, OWNER, "tutor", "chat")
    assert (event.input_tokens, event.output_tokens, event.cache_read_tokens, event.cache_write_tokens) == (
        40, 9, 5, 3)
    assert answer.fallback_from == "anthropic"


def test_over_quota_means_no_model_call() -> None:
    fake = FakeAnthropic(message_json())
    quota = Quota(over=True)
    with pytest.raises(QuotaExceeded):
        metered(fake.provider(), Publisher(), quota).complete(ask())
    with pytest.raises(QuotaExceeded):
        metered(fake.provider(), Publisher(), quota).stream(ask())  # refused before iteration starts
    assert fake.requests == [] and quota.checked == [OWNER, OWNER]


def test_a_failed_usage_publish_does_not_fail_the_answer() -> None:
    fake = FakeAnthropic(message_json("Still here."))
    provider = metered(fake.provider(), Publisher(fail=True))
    assert provider.complete(ask()).text == "Still here."
    assert provider.published == []


def test_stream_usage_is_published_once_after_the_final_answer() -> None:
    fake = FakeAnthropic(sse(START, BLOCK, delta("Hi"), *END))
    publisher = Publisher()
    items = []
    for item in metered(fake.provider(), publisher).stream(ask()):
        items.append(item)
        if isinstance(item, str):
            assert publisher.events == []  # nothing before the answer is complete
    assert len(publisher.events) == 1 and publisher.events[0].output_tokens == 8


# -- factory ------------------------------------------------------------------------------------
def test_factory_builds_the_configured_chain() -> None:
    anthropic_env = AiEnv.load({"AI_PROVIDER": "anthropic_api", "ANTHROPIC_SECRET_NAME": "s"})
    chain = assemble(anthropic_env, bedrock_client=bedrock_client())
    assert isinstance(chain, FallbackProvider)
    assert (chain.primary.engine, chain.secondary.engine if chain.secondary else None) == ("anthropic", "bedrock")
    alone = assemble(AiEnv.load({**anthropic_env.model_dump(by_alias=True), "FALLBACK_TO_BEDROCK": "false"}))
    assert isinstance(alone, FallbackProvider) and alone.secondary is None
    assert assemble(AiEnv.load({"AI_PROVIDER": "offline"})).engine == "offline"
    with pytest.raises(ValueError, match="ANTHROPIC_SECRET_NAME"):
        AiEnv.load({"AI_PROVIDER": "anthropic_api"})


def test_the_chat_handler_configured_for_bedrock_never_imports_anthropic() -> None:
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('chat_app', 'functions/chat/app.py')\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print('anthropic' in sys.modules)\n"
    )
    env = {"PYTHONPATH": "functions/shared", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           "TABLE_NAME": "parley-test", "CORS_ALLOW_ORIGIN": "https://app.example.com", "EVENT_BUS_NAME": "bus",
           "AI_PROVIDER": "bedrock", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
