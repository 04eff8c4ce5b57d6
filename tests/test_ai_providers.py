"""The AI provider layer: Bedrock (botocore Stubber), the Anthropic API (the real ``anthropic`` client
over an httpx mock transport, SDK retries as in production: off), the fallback between them with its
deadline arithmetic, the circuit breaker, and metering.

No network and no sleeping: Bedrock answers come from a Stubber, Anthropic answers from
``httpx2.MockTransport`` (the HTTP library under anthropic 2.x), the secret from moto, and time from
a fake monotonic clock whose ``sleep`` advances it. A "hanging" engine advances the fake clock by the
timeout it was given and then times out, so what is asserted is the deadline arithmetic, not wall time.
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

from local_stack.template import load_template
from parley.ai import fallback as fallback_module
from parley.ai import models
from parley.ai.anthropic_api import AnthropicProvider, secret_api_key
from parley.ai.bedrock import BedrockProvider
from parley.ai.caching import estimate_tokens, min_cacheable_tokens
from parley.ai.deadline import Deadline
from parley.ai.errors import ProviderError, ProviderMisconfigured, ProviderRejected
from parley.ai.factory import assemble
from parley.ai.fallback import CircuitBreaker, FallbackProvider
from parley.ai.metering import MeteredProvider
from parley.ai.types import AiAnswer, AiRequest, TokenUsage, Turn, UsageReport
from parley.analysis.judge import Conversation, Judge
from parley.analysis.metrics import measure
from parley.analysis.report import judge_schema
from parley.core import clients
from parley.core.config import AiEnv
from parley.core.errors import QuotaExceeded
from parley.proofreading.engine import EngineLimits, parse_answer, web_search_status
from parley.proofreading.models import EngineSettings, answer_schema
from parley.usage.events import UsageEvent
from parley.usage.pricing import DEFAULT_PRICES

ROOT = Path(__file__).resolve().parent.parent
HAIKU = "global.anthropic.claude-haiku-4-5-20251001-v1:0"  # the default BedrockModelId
HAIKU3 = "anthropic.claude-3-haiku-20240307-v1:0"  # retired in most Regions: only for cachePoint support
SONNET = "claude-sonnet-4-6"
OWNER = "DEVICE#provider-tests-01"
CHAT_DEADLINE = 29 - 1.5  # the chat Lambda's 29 s less the handler's 1.5 s margin
ONE_ATTEMPT = 7.0  # the primary's share is 7 - 5 = 2 s: one attempt, and no time to wait for another


def drain(stream: Iterator[Any], into: list[Any]) -> None:
    """Collect a stream's items until it ends or raises (usage reports, for metering, are not items)."""
    for item in stream:
        if not isinstance(item, UsageReport):
            into.append(item)


def ask(text: str = "I visited my grandmother yesterday.", **kw: Any) -> AiRequest:
    return AiRequest(system=("You are a tutor.",), messages=(Turn("user", text),), **kw)


class FakeClock:
    """A monotonic clock that only moves when something sleeps or 'hangs'."""

    def __init__(self) -> None:
        self.start = self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def deadline(self, seconds: float) -> Deadline:
        return Deadline(self.now + seconds, clock=self, sleep=self.sleep)

    @property
    def elapsed(self) -> float:
        return self.now - self.start


# -- Bedrock ------------------------------------------------------------------------------------
def bedrock_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="y")  # dummy credentials for the Stubber


def converse_ok(text: str = "Nice! What did you talk about?", stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": stop,
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


class BedrockClients:
    """Stands for ``clients.model_client``: records the read timeout each call was given."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.read_timeouts: list[float] = []

    def __call__(self, read_timeout: float) -> Any:
        self.read_timeouts.append(read_timeout)
        return self.client


class HangingBedrock:
    """A bedrock-runtime client that never answers: it 'waits' its read timeout, then times out."""

    def __init__(self, clock: FakeClock, clients_: BedrockClients) -> None:
        self.clock = clock
        self.clients = clients_

    def converse(self, **_: Any) -> Any:
        self.clock.now += self.clients.read_timeouts[-1]
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")


def test_bedrock_converse_sends_the_request_and_maps_the_answer() -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_response("converse", converse_ok(cacheReadInputTokens=0), expected_params={
            "modelId": HAIKU,
            "system": [{"text": "You are a tutor."}],
            "messages": [{"role": "user", "content": [{"text": "I visited my grandmother yesterday."}]}],
            "inferenceConfig": {"maxTokens": 300, "temperature": 0.7},
        })
        answer = BedrockProvider(client, HAIKU).complete(ask())
        stubber.assert_no_pending_responses()
    assert answer == AiAnswer(text="Nice! What did you talk about?", engine="bedrock", model=HAIKU,
                              usage=TokenUsage(input_tokens=40, output_tokens=9))


@pytest.mark.parametrize(("code", "status", "message", "expected"), [
    ("ThrottlingException", 429, "Too many requests", ProviderError),
    ("ServiceUnavailableException", 503, "Unavailable", ProviderError),
    ("InternalServerException", 500, "Oops", ProviderError),
    ("ModelTimeoutException", 408, "Timed out", ProviderError),
    ("ModelErrorException", 424, "The model failed", ProviderError),
    ("ValidationException", 400, "messages.0.content: text content blocks must be non-empty", ProviderRejected),
    # The deployment's, not the caller's: a 503 for the operator to act on, never a 400.
    ("ResourceNotFoundException", 404, "This model version has reached the end of its life.", ProviderMisconfigured),
    ("AccessDeniedException", 403, "You don't have access to the model with the specified model ID.",
     ProviderMisconfigured),
    ("ValidationException", 400, "Invocation of model ID anthropic.claude-sonnet-4-6 with on-demand throughput "
     "isn't supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
     ProviderMisconfigured),
    ("ValidationException", 400, "The provided model identifier is invalid.", ProviderMisconfigured),
])
def test_bedrock_errors_are_mapped(code: str, status: int, message: str, expected: type[Exception]) -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("converse", service_error_code=code, service_message=message,
                                 http_status_code=status)
        with pytest.raises(ProviderError if expected is ProviderMisconfigured else expected) as caught:
            BedrockProvider(client, HAIKU).complete(ask())
    error = caught.value
    assert type(error) is expected and error.engine == "bedrock"  # type: ignore[attr-defined]
    if expected is ProviderError:
        assert error.retryable  # type: ignore[attr-defined]
    if expected is ProviderMisconfigured:
        assert error.status == 503 and error.code == "AI_NOT_CONFIGURED"  # type: ignore[attr-defined]
        assert HAIKU in error.message and "BedrockModelId" in error.message  # type: ignore[attr-defined]
        assert message[:40] in error.operator_action  # type: ignore[attr-defined]
        assert message[:40] not in error.message  # Bedrock's own words (ARNs, account ids) stay in the log


def test_bedrock_read_timeout_is_retryable() -> None:
    class Slow:
        def converse(self, **_: Any) -> Any:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    with pytest.raises(ProviderError) as caught:
        BedrockProvider(Slow(), HAIKU).complete(ask())
    assert caught.value.retryable and "in time" in caught.value.message


def test_bedrock_stream_yields_deltas_then_one_answer() -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        add_stream(stubber, stream_events("Great", " choice!"))
        items = list(BedrockProvider(client, HAIKU).stream(ask()))
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
            drain(BedrockProvider(client, HAIKU).stream(ask()), got)
    assert got == ["Half"] and caught.value.retryable


def test_bedrock_cache_point_only_for_models_that_support_it_and_long_prefixes() -> None:
    long_system = ("x" * 4 * 4600,)  # ~4600 tokens: above every model's minimum
    request = AiRequest(system=long_system, messages=(Turn("user", "hi"),))
    cached = BedrockProvider(None, HAIKU).converse_params(request)
    assert cached["system"][-1] == {"cachePoint": {"type": "default"}}
    plain = BedrockProvider(None, HAIKU3).converse_params(request)  # Claude 3 Haiku has no cachePoint
    assert all("cachePoint" not in block for block in plain["system"])
    short = BedrockProvider(None, HAIKU).converse_params(ask())
    assert all("cachePoint" not in block for block in short["system"])


def test_bedrock_structured_output_is_sent_as_output_config_and_validated_by_botocore() -> None:
    client = bedrock_client()
    request = ask("<copy>teh cat</copy>", json_schema=answer_schema(), max_tokens=4096)
    with Stubber(client) as stubber:  # the Stubber validates the parameters against botocore's model
        stubber.add_response("converse", converse_ok('{"corrections": []}'))
        answer = BedrockProvider(client, HAIKU).complete(request)
        stubber.assert_no_pending_responses()
    assert answer.text == '{"corrections": []}'
    params = BedrockProvider(client, HAIKU).converse_params(request)
    schema = json.loads(params["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"])
    assert schema["additionalProperties"] is False and schema["required"] == ["corrections"]
    assert all("JSON Schema" not in block.get("text", "") for block in params["system"])  # sent once, not twice


def test_bedrock_without_structured_output_gets_the_schema_as_a_forced_tool() -> None:
    client = bedrock_client()
    unknown = "global.anthropic.claude-haiku-5-5"  # not in Parley's table
    tool_answer = {"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t1", "name": "answer", "input": {"corrections": []}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49},
        "metrics": {"latencyMs": 300}}
    with Stubber(client) as stubber:
        stubber.add_response("converse", tool_answer)
        answer = BedrockProvider(client, unknown).complete(ask(json_schema=answer_schema()))
    assert json.loads(answer.text) == {"corrections": []} and answer.stop_reason == "end_turn"
    params = BedrockProvider(client, unknown).converse_params(ask(json_schema=answer_schema()))
    assert params["toolConfig"]["toolChoice"] == {"tool": {"name": "answer"}} and "outputConfig" not in params


def test_bedrock_model_clients_read_no_longer_than_asked_and_do_not_retry_on_their_own() -> None:
    clients.reset()
    client = clients.model_client("bedrock-runtime", read_timeout=12.0)
    assert client.meta.config.read_timeout == 12.0
    assert client.meta.config.retries["total_max_attempts"] == 1  # one attempt: no botocore retry
    assert clients.model_client("bedrock-runtime", read_timeout=12.0) is client  # cached per whole second
    clients.reset()


# -- Anthropic ----------------------------------------------------------------------------------
Handler = Callable[[httpx2.Request], httpx2.Response]


class FakeAnthropic:
    """An httpx mock transport speaking the Messages API; records what it was sent."""

    def __init__(self, *responses: Handler | httpx2.Response) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx2.Headers] = []
        self.timeouts: list[float] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(json.loads(request.content))
        self.headers.append(request.headers)
        self.timeouts.append(float(request.extensions["timeout"]["read"]))
        nxt = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        return nxt(request) if callable(nxt) else nxt

    def http_client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self))

    def provider(self, model: str = SONNET, **kw: Any) -> AnthropicProvider:
        """The provider as the factory builds it in production (the SDK's retries off)."""
        return AnthropicProvider(model, api_key=lambda: "sk-ant-test", http_client=self.http_client(), **kw)


def message_json(text: str = "Sounds lovely! What did you cook?", *, content: list[dict[str, Any]] | None = None,
                 stop: str = "end_turn", stop_details: dict[str, Any] | None = None, **usage: Any) -> httpx2.Response:
    return httpx2.Response(200, json={
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
        "content": content if content is not None else [{"type": "text", "text": text}],
        "stop_reason": stop, "stop_sequence": None, "stop_details": stop_details,
        "usage": {"input_tokens": 50, "output_tokens": 12, **usage}})


def status(code: int, kind: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(code, headers=headers, json={"type": "error", "error": {"type": kind, "message": kind}})


def timeout(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ReadTimeout("timed out", request=request)


def hanging(clock: FakeClock) -> Handler:
    """An Anthropic API that never answers: each request 'waits' its read timeout, then times out."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        clock.now += float(request.extensions["timeout"]["read"])
        raise httpx2.ReadTimeout("timed out", request=request)
    return handler


def sse(*events: dict[str, Any]) -> httpx2.Response:
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


def start(input_tokens: int = 60) -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}


START = start()
BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def delta(text: str, index: int = 0) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


def end(stop: str = "end_turn", index: int = 0, **usage: Any) -> list[dict[str, Any]]:
    return [{"type": "content_block_stop", "index": index},
            {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
             "usage": {"output_tokens": 8, **usage}},
            {"type": "message_stop"}]


END = end()
OVERLOADED_EVENT = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
SEARCH_USE = {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "KOSPI close"}}
SEARCH_RESULT = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": [
    {"type": "web_search_result", "url": "https://example.com/markets", "title": "Markets", "encrypted_content": "e1",
     "page_age": None}]}


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
    assert answer.web_search == "used"


@pytest.mark.parametrize(("model", "minimum", "cached"), [
    ("claude-sonnet-4-6", 1024, True),  # ~1500 tokens is enough for a 1024-token model (was wrongly 2048)
    ("claude-opus-4-1", 1024, True),
    ("claude-haiku-4-5", 4096, False),  # ... but not for 4096
    ("claude-opus-4-6", 4096, False),
    ("anthropic.claude-3-haiku-20240307-v1:0", 2048, False),
    ("claude-opus-5", 512, True),
    ("claude-sonnet-7", 4096, False),  # an unknown model: the highest current minimum, never a guess
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


@pytest.mark.parametrize(("response", "kind"), [
    (status(429, "rate_limit_error"), ProviderError),
    (status(529, "overloaded_error"), ProviderError),
    (status(500, "api_error"), ProviderError),
    (timeout, ProviderError),
    (status(401, "authentication_error"), ProviderMisconfigured),
    (status(403, "permission_error"), ProviderMisconfigured),
    (status(404, "not_found_error"), ProviderMisconfigured),  # a retired or mistyped model: ours, not the user's
])
def test_anthropic_failures_that_another_engine_can_cover(response: Any, kind: type[Exception]) -> None:
    with pytest.raises(ProviderError) as caught:
        FakeAnthropic(response).provider().complete(ask())
    assert type(caught.value) is kind and caught.value.engine == "anthropic"
    assert caught.value.retryable is (kind is ProviderError)


def test_anthropic_400_is_rejected() -> None:
    with pytest.raises(ProviderRejected) as caught:
        FakeAnthropic(status(400, "invalid_request_error")).provider().complete(ask())
    assert caught.value.upstream_status == 400


def test_anthropic_retry_after_is_read_but_the_sdk_never_sleeps_on_it() -> None:
    fake = FakeAnthropic(status(429, "rate_limit_error", {"retry-after": "45"}), message_json())
    provider = assemble(AiEnv.load({"AI_PROVIDER": "anthropic_api", "ANTHROPIC_SECRET_NAME": "s",
                                    "FALLBACK_TO_BEDROCK": "false"}),
                        anthropic_options={"api_key": lambda: "sk-ant-test", "http_client": fake.http_client()})
    assert isinstance(provider, FallbackProvider)
    primary = provider.primary
    assert isinstance(primary, AnthropicProvider) and primary.client().max_retries == 0  # as in production
    with pytest.raises(ProviderError) as caught:
        primary.complete(ask())
    assert caught.value.retry_after == 45.0 and len(fake.requests) == 1


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


def test_anthropic_structured_output_goes_as_output_config_and_the_schema_is_sent_once() -> None:
    fake = FakeAnthropic(message_json('{"corrections": []}'))
    answer = fake.provider().complete(ask("<copy>teh cat</copy>", json_schema=answer_schema()))
    sent = fake.requests[0]
    fmt = sent["output_config"]["format"]
    assert fmt["type"] == "json_schema" and fmt["schema"]["additionalProperties"] is False
    item = fmt["schema"]["properties"]["corrections"]["items"]
    assert item["additionalProperties"] is False and "minimum" not in item["properties"]["offset"]
    assert all("JSON Schema" not in block["text"] for block in sent["system"])
    assert parse_answer(answer.final_text).corrections == []


def test_with_web_search_the_schema_stays_in_the_prompt_and_the_answer_follows_the_last_search() -> None:
    preamble = "I'll check the figure {KOSPI, 2,613} first."  # braces before the searches broke the parser
    answer_json = json.dumps({"corrections": [{"original": "2,613", "replacement": "2,631", "offset": 6,
                                               "category": "fact-check", "explanation": "closed at 2,631"}]})
    fake = FakeAnthropic(message_json(content=[{"type": "text", "text": preamble}, SEARCH_USE, SEARCH_RESULT,
                                               {"type": "text", "text": answer_json}],
                                      server_tool_use={"web_search_requests": 1}))
    answer = fake.provider().complete(ask("<copy>KOSPI 2,613</copy>", json_schema=answer_schema(),
                                          web_search=True, web_search_max_uses=3))
    sent = fake.requests[0]
    assert "output_config" not in sent and any("JSON Schema" in block["text"] for block in sent["system"])
    assert answer.text == preamble + answer_json and answer.final_text == answer_json
    with pytest.raises(ValueError):
        parse_answer(answer.text)  # what the old parser read: first "{" to last "}"
    assert parse_answer(answer.final_text).corrections[0].replacement == "2,631"
    assert answer.web_search == "used"


def test_a_paused_turn_is_continued_with_the_paused_content_sent_back() -> None:
    first = sse(start(100), BLOCK, delta("Let me check."), {"type": "content_block_stop", "index": 0},
                {"type": "content_block_start", "index": 1, "content_block": SEARCH_USE},
                *end("pause_turn", index=1, server_tool_use={"web_search_requests": 1}))
    second = sse(start(150), {"type": "content_block_start", "index": 0, "content_block": SEARCH_RESULT},
                 {"type": "content_block_stop", "index": 0},
                 {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
                 delta('{"corrections": []}', index=1), *end(index=1))
    fake = FakeAnthropic(first, second)
    items = list(fake.provider().stream(ask(web_search=True, web_search_max_uses=3, json_schema=answer_schema())))
    # each message's start reports the usage so far, for metering an early end: the second counts both inputs
    reports = [i.usage.input_tokens for i in items if isinstance(i, UsageReport)]
    items = [i for i in items if not isinstance(i, UsageReport)]
    assert reports == [100, 250]

    assert items[:2] == ["Let me check.", '{"corrections": []}']
    final = items[-1]
    assert isinstance(final, AiAnswer) and final.stop_reason == "end_turn"
    assert final.final_text == '{"corrections": []}'
    assert final.usage.input_tokens == 250 and final.usage.output_tokens == 16 and final.usage.web_searches == 1
    assert len(fake.requests) == 2
    continued = fake.requests[1]["messages"]
    assert continued[0] == fake.requests[0]["messages"][0]
    assert continued[-1]["role"] == "assistant"
    assert [b["type"] for b in continued[-1]["content"]] == ["text", "server_tool_use"]


def test_a_paused_turn_is_continued_without_streaming_too() -> None:
    fake = FakeAnthropic(message_json(content=[{"type": "text", "text": "Searching."}, SEARCH_USE], stop="pause_turn"),
                         message_json(content=[SEARCH_RESULT, {"type": "text", "text": "Done."}]))
    answer = fake.provider().complete(ask(web_search=True, web_search_max_uses=2))
    assert (answer.stop_reason, answer.final_text, answer.usage.input_tokens) == ("end_turn", "Done.", 100)
    assert [b["type"] for b in fake.requests[1]["messages"][-1]["content"]] == ["text", "server_tool_use"]


def test_a_turn_still_paused_when_the_time_is_up_is_reported_as_incomplete() -> None:
    clock = FakeClock()
    fake = FakeAnthropic(message_json(content=[SEARCH_USE], stop="pause_turn"))
    answer = fake.provider().complete(ask(web_search=True, web_search_max_uses=2, deadline=clock.deadline(1.5)))
    assert len(fake.requests) == 1 and answer.truncated  # not enough time left to continue


def test_the_key_comes_from_secrets_manager() -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="test/anthropic-plain", SecretString="sk-ant-plain")
        secrets.create_secret(Name="test/anthropic-json", SecretString=json.dumps({"api_key": "sk-ant-json"}))
        assert secret_api_key("test/anthropic-plain") == "sk-ant-plain"
        assert secret_api_key("test/anthropic-json") == "sk-ant-json"
        fake = FakeAnthropic(message_json())
        provider = AnthropicProvider(SONNET, secret_name="test/anthropic-json", http_client=fake.http_client())
        provider.complete(ask())
    assert fake.headers[0]["authorization"] == "Bearer sk-ant-json"


def test_a_missing_secret_is_the_deployments_error_that_the_fallback_covers() -> None:
    with mock_aws():
        provider = AnthropicProvider(SONNET, secret_name="test/does-not-exist")
        with pytest.raises(ProviderMisconfigured) as caught:
            provider.complete(ask())
    assert not caught.value.retryable and "AnthropicSecretName" in caught.value.message


# -- the chain as the factory builds it: deadlines, fallback, breaker ----------------------------
class Metrics:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, name: str, engine: str) -> None:
        self.seen.append((name, engine))


class OperatorLog:
    """Records the fallback layer's ERROR lines (the operator's alarm-worthy ones)."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, message: str, *, extra: dict[str, Any]) -> None:
        self.errors.append((message, extra))


@pytest.fixture
def operator_log(monkeypatch: pytest.MonkeyPatch) -> OperatorLog:
    log = OperatorLog()
    monkeypatch.setattr(fallback_module.logger, "error", log)
    return log


def production_chain(fake: FakeAnthropic, bedrock: Any, **env: str) -> tuple[FallbackProvider, Metrics]:
    """``assemble`` as a function gets it (chat's AI_TIMEOUT_SECONDS), with the test's transports."""
    built = assemble(AiEnv.load({"AI_PROVIDER": "anthropic_api", "ANTHROPIC_SECRET_NAME": "s",
                                 "AI_TIMEOUT_SECONDS": "20", **env}),
                     bedrock_client=bedrock,
                     anthropic_options={"api_key": lambda: "sk-ant-test", "http_client": fake.http_client()},
                     breaker=lambda engine, env: CircuitBreaker())
    assert isinstance(built, FallbackProvider)
    metrics = Metrics()
    built.emit = metrics
    built.jitter = lambda: 1.0  # the full backoff, so the arithmetic is exact
    return built, metrics


def stubbed(*responses: dict[str, Any]) -> tuple[Any, Stubber]:
    client = bedrock_client()
    stubber = Stubber(client)
    for response in responses:
        stubber.add_response("converse", response)
    stubber.activate()
    return client, stubber


def test_a_429_asking_for_45_s_goes_to_the_fallback_at_once_within_the_deadline() -> None:
    clock = FakeClock()
    fake = FakeAnthropic(status(429, "rate_limit_error", {"retry-after": "45"}))
    client, stubber = stubbed(converse_ok("Bedrock here."))
    bedrock = BedrockClients(client)
    chain, metrics = production_chain(fake, bedrock)

    answer = chain.complete(ask(deadline=clock.deadline(CHAT_DEADLINE)))

    stubber.assert_no_pending_responses()
    assert (answer.engine, answer.fallback_from, answer.text) == ("bedrock", "anthropic", "Bedrock here.")
    assert len(fake.requests) == 1 and clock.slept == []  # no 45 s wait, no SDK retry
    # Anthropic's attempt had 27.5 s less the fallback's share (45 %: 12.375 s); Bedrock its 20 s cap.
    assert fake.timeouts == [pytest.approx(CHAT_DEADLINE * 0.55)]
    assert bedrock.read_timeouts == [20.0]
    assert clock.elapsed < CHAT_DEADLINE
    assert metrics.seen == [("ProviderCalls", "anthropic"), ("ProviderFailures", "anthropic"),
                            ("ProviderCalls", "bedrock"), ("ProviderFallbacks", "anthropic")]


def test_a_short_retry_after_that_fits_is_waited_and_retried_on_the_same_engine() -> None:
    clock = FakeClock()
    fake = FakeAnthropic(status(429, "rate_limit_error", {"retry-after": "2"}), message_json("Second time lucky."))
    client, _ = stubbed()
    chain, _ = production_chain(fake, BedrockClients(client))

    answer = chain.complete(ask(deadline=clock.deadline(CHAT_DEADLINE)))

    assert (answer.engine, answer.text) == ("anthropic", "Second time lucky.")
    assert clock.slept == [2.0] and len(fake.requests) == 2
    assert fake.timeouts[1] == pytest.approx(CHAT_DEADLINE * 0.55 - 2)  # the retry gets what is left of the share


def test_a_hanging_primary_gives_way_to_the_fallback_within_the_deadline() -> None:
    clock = FakeClock()
    fake = FakeAnthropic(hanging(clock))
    client, _ = stubbed(converse_ok("Bedrock here."))
    bedrock = BedrockClients(client)
    chain, _ = production_chain(fake, bedrock)

    answer = chain.complete(ask(deadline=clock.deadline(CHAT_DEADLINE)))

    assert (answer.engine, answer.fallback_from) == ("bedrock", "anthropic")
    assert fake.timeouts == [pytest.approx(15.125)]  # 27.5 s less the fallback's 12.375 s; no retry after
    assert bedrock.read_timeouts == [12.0]  # the whole seconds left, not botocore's own 60 s
    assert clock.elapsed <= CHAT_DEADLINE


def test_when_both_engines_hang_the_caller_still_gets_its_503_before_the_functions_limit() -> None:
    clock = FakeClock()
    fake = FakeAnthropic(hanging(clock))
    bedrock = BedrockClients(None)
    bedrock.client = HangingBedrock(clock, bedrock)
    chain, _ = production_chain(fake, bedrock)

    with pytest.raises(ProviderError) as caught:
        chain.complete(ask(deadline=clock.deadline(CHAT_DEADLINE)))

    assert caught.value.status == 503 and caught.value.engine == "bedrock"
    assert fake.timeouts == [pytest.approx(15.125)] and bedrock.read_timeouts == [12.0]
    assert clock.elapsed == pytest.approx(27.125) and clock.elapsed < CHAT_DEADLINE


def test_bedrock_alone_in_chat_answers_its_503_by_the_deadline() -> None:
    clock = FakeClock()
    bedrock = BedrockClients(None)
    bedrock.client = HangingBedrock(clock, bedrock)
    chain = assemble(AiEnv.load({"AI_PROVIDER": "bedrock", "AI_TIMEOUT_SECONDS": "20"}), bedrock_client=bedrock,
                     breaker=lambda engine, env: CircuitBreaker())
    assert isinstance(chain, FallbackProvider)
    chain.emit, chain.jitter = Metrics(), (lambda: 1.0)

    with pytest.raises(ProviderError) as caught:
        chain.complete(ask(deadline=clock.deadline(CHAT_DEADLINE)))

    assert caught.value.status == 503
    assert bedrock.read_timeouts == [20.0, 7.0] and clock.slept == [0.5]  # 20 + 0.5 + 7 = 27.5
    assert clock.elapsed <= CHAT_DEADLINE


def test_bedrock_alone_takes_each_read_timeout_and_retry_from_the_judges_budget() -> None:
    """The judge: 120 s Lambda less 3 s, 50 s per attempt. Before, Bedrock read 50 s with botocore's
    own retry whatever the time left; now three attempts end inside the 117 s."""
    clock = FakeClock()
    bedrock = BedrockClients(None)
    bedrock.client = HangingBedrock(clock, bedrock)
    chain = assemble(AiEnv.load({"AI_PROVIDER": "bedrock", "AI_TIMEOUT_SECONDS": "50"}), bedrock_client=bedrock,
                     breaker=lambda engine, env: CircuitBreaker())
    assert isinstance(chain, FallbackProvider)
    chain.emit, chain.jitter = Metrics(), (lambda: 1.0)

    with pytest.raises(ProviderError):
        chain.complete(ask(deadline=clock.deadline(117)))

    assert bedrock.read_timeouts == [50.0, 50.0, 15.0]  # 117 - 50 - 0.5 backoff - 50 - 1.0 backoff = 15.5
    assert clock.slept == [0.5, 1.0] and clock.elapsed <= 117


@pytest.mark.parametrize("failure", [status(429, "rate_limit_error"), status(529, "overloaded_error"), timeout],
                         ids=["429", "529", "timeout"])
def test_fallback_to_bedrock_when_anthropic_cannot_answer(failure: Any) -> None:
    clock = FakeClock()
    fake = FakeAnthropic(failure)
    client, stubber = stubbed(converse_ok("Bedrock here."))
    chain, metrics = production_chain(fake, BedrockClients(client))
    answer = chain.complete(ask(deadline=clock.deadline(ONE_ATTEMPT)))
    stubber.assert_no_pending_responses()
    assert (answer.engine, answer.fallback_from, answer.text) == ("bedrock", "anthropic", "Bedrock here.")
    assert ("ProviderFallbacks", "anthropic") in metrics.seen


@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning")  # on purpose
def test_a_retired_anthropic_model_falls_back_to_the_same_model_on_bedrock_and_alerts(
        operator_log: OperatorLog) -> None:
    fake = FakeAnthropic(status(404, "not_found_error"))  # claude-sonnet-4-5 retired on 2026-11-30
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_response("converse", converse_ok("Same model, on Bedrock."), expected_params={
            "modelId": "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "system": [{"text": "You are a tutor."}],
            "messages": [{"role": "user", "content": [{"text": "I visited my grandmother yesterday."}]}],
            "inferenceConfig": {"maxTokens": 300, "temperature": 0.7},
        })
        chain, metrics = production_chain(fake, BedrockClients(client), ANTHROPIC_MODEL_ID="claude-sonnet-4-5")
        answer = chain.complete(ask(deadline=FakeClock().deadline(CHAT_DEADLINE)))
    assert (answer.engine, answer.fallback_from) == ("bedrock", "anthropic")
    assert len(fake.requests) == 1  # not retried: it would fail the same way
    assert ("ProviderConfigErrors", "anthropic") in metrics.seen
    ((message, extra),) = operator_log.errors
    assert "misconfigured" in message and extra["model"] == "claude-sonnet-4-5"
    assert "AnthropicModelId" in extra["operator_action"] or "active model" in extra["operator_action"]


@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning")  # on purpose
def test_a_retired_model_without_a_fallback_is_a_503_naming_the_model(operator_log: OperatorLog) -> None:
    fake = FakeAnthropic(status(404, "not_found_error"))
    chain, _ = production_chain(fake, BedrockClients(None), ANTHROPIC_MODEL_ID="claude-sonnet-4-5",
                                      FALLBACK_TO_BEDROCK="false")
    with pytest.raises(ProviderMisconfigured) as caught:
        chain.complete(ask())
    error = caught.value
    assert (error.status, error.code, error.model) == (503, "AI_NOT_CONFIGURED", "claude-sonnet-4-5")
    assert "claude-sonnet-4-5" in error.message and "AnthropicModelId" in error.message
    assert len(fake.requests) == 1 and len(operator_log.errors) == 1


def test_a_retired_bedrock_model_is_a_503_and_an_operator_error_not_the_users_400(
        operator_log: OperatorLog) -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("converse", service_error_code="ResourceNotFoundException", http_status_code=404,
                                 service_message="This model version has reached the end of its life.")
        chain = assemble(AiEnv.load({"AI_PROVIDER": "bedrock", "BEDROCK_MODEL_ID": "us." + HAIKU3}),
                         bedrock_client=client, breaker=lambda engine, env: CircuitBreaker())
        assert isinstance(chain, FallbackProvider)
        metrics = Metrics()
        chain.emit = metrics
        with pytest.raises(ProviderMisconfigured) as caught:
            chain.complete(ask())
    assert caught.value.status == 503 and "us." + HAIKU3 in caught.value.message
    assert metrics.seen.count(("ProviderCalls", "bedrock")) == 1  # not retried
    ((_, extra),) = operator_log.errors
    assert "end of its life" in extra["operator_action"]


@pytest.mark.parametrize(("anthropic_model", "bedrock_profile", "anthropic_max", "bedrock_max"), [
    ("claude-opus-4-5", "global.anthropic.claude-opus-4-5-20251101-v1:0", 64_000, 64_000),
    ("claude-sonnet-4-6", "global.anthropic.claude-sonnet-4-6", 100_000, 64_000),
])
def test_a_prompt_falls_back_to_the_same_model_on_bedrock_with_max_tokens_clamped(
        anthropic_model: str, bedrock_profile: str, anthropic_max: int, bedrock_max: int) -> None:
    fake = FakeAnthropic(status(529, "overloaded_error"))
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_response("converse", converse_ok("Bedrock's Opus."), expected_params={
            "modelId": bedrock_profile,
            "system": [{"text": "You are a tutor."}],
            "messages": [{"role": "user", "content": [{"text": "I visited my grandmother yesterday."}]}],
            "inferenceConfig": {"maxTokens": bedrock_max, "temperature": 0.7},
        })
        chain, _ = production_chain(fake, BedrockClients(client), ANTHROPIC_MODEL_ID=anthropic_model)
        answer = chain.complete(ask(max_tokens=100_000, deadline=FakeClock().deadline(CHAT_DEADLINE)))
        stubber.assert_no_pending_responses()
    assert answer.model == bedrock_profile and answer.fallback_from == "anthropic"
    assert fake.requests[0]["max_tokens"] == anthropic_max


def test_the_fallback_profile_keeps_the_configured_geography() -> None:
    assert models.bedrock_equivalent("claude-opus-4-6", "eu.anthropic.claude-haiku-4-5-20251001-v1:0") == \
        "eu.anthropic.claude-opus-4-6-v1"
    assert models.bedrock_equivalent("claude-haiku-4-5-20251001", HAIKU) == HAIKU
    assert models.bedrock_equivalent("claude-opus-5-5", HAIKU) == HAIKU  # not mapped: BedrockModelId


def test_web_search_is_reported_unavailable_when_the_fallback_answers() -> None:
    fake = FakeAnthropic(status(529, "overloaded_error"))
    client, _ = stubbed(converse_ok('{"corrections": []}'))
    chain, _ = production_chain(fake, BedrockClients(client))
    answer = chain.complete(ask(json_schema=answer_schema(), web_search=True, web_search_max_uses=3,
                                deadline=FakeClock().deadline(CHAT_DEADLINE)))
    assert (answer.engine, answer.web_search) == ("bedrock", "unavailable")
    limits = EngineLimits(max_chars=1000, web_search_enabled=True, web_search_max_uses=3)
    assert web_search_status(EngineSettings(web_search=True), limits, answer) == "unavailable on fallback"
    assert web_search_status(EngineSettings(web_search=False), limits, answer) is None


def test_no_fallback_on_the_callers_own_400() -> None:
    client, stubber = stubbed(converse_ok())
    chain, _ = production_chain(FakeAnthropic(status(400, "invalid_request_error")), BedrockClients(client))
    chain.breaker = CircuitBreaker(threshold=1)
    with pytest.raises(ProviderRejected):
        chain.complete(ask())
    with pytest.raises(AssertionError):
        stubber.assert_no_pending_responses()  # Bedrock was never asked
    assert chain.breaker.state == "closed"  # our mistake says nothing about the engine's health


def test_without_a_secondary_the_error_reaches_the_caller() -> None:
    clock = FakeClock()
    with pytest.raises(ProviderError):
        FallbackProvider(FakeAnthropic(status(529, "overloaded_error")).provider(), None, CircuitBreaker(),
                         emit=Metrics()).complete(ask(deadline=clock.deadline(3)))


def test_stream_falls_back_before_the_first_token() -> None:
    client = bedrock_client()
    with Stubber(client) as stubber:
        add_stream(stubber, stream_events("From", " Bedrock"))
        provider = FallbackProvider(FakeAnthropic(status(529, "overloaded_error")).provider(),
                                    BedrockProvider(client, HAIKU), CircuitBreaker(), emit=Metrics())
        items = list(provider.stream(ask(deadline=FakeClock().deadline(8))))
    assert items[:2] == ["From", " Bedrock"]
    assert isinstance(items[-1], AiAnswer) and items[-1].fallback_from == "anthropic"


def test_stream_failing_mid_way_raises_and_does_not_switch_engines() -> None:
    fake = FakeAnthropic(sse(START, BLOCK, delta("The answer is"), OVERLOADED_EVENT))
    client, _ = stubbed()
    metrics = Metrics()
    got: list[Any] = []
    chain = FallbackProvider(fake.provider(), BedrockProvider(client, HAIKU), CircuitBreaker(), emit=metrics)
    with pytest.raises(ProviderError) as caught:
        drain(chain.stream(ask()), got)
    assert got == ["The answer is"]  # what reached the caller stays the only text
    assert caught.value.retryable and caught.value.engine == "anthropic"
    assert ("ProviderCalls", "bedrock") not in metrics.seen and len(fake.requests) == 1


def test_breaker_opens_skips_the_primary_then_tries_it_again_after_the_cool_down() -> None:
    fake = FakeAnthropic(status(529, "overloaded_error"), status(529, "overloaded_error"), message_json("Back!"))
    client, _ = stubbed(converse_ok("b1"), converse_ok("b2"), converse_ok("b3"))
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, cooldown=30, clock=clock)
    provider = FallbackProvider(fake.provider(), BedrockProvider(client, HAIKU), breaker, emit=Metrics())
    short = dict(deadline=clock.deadline(ONE_ATTEMPT))

    assert [provider.complete(ask(**short)).text for _ in range(2)] == ["b1", "b2"]
    assert len(fake.requests) == 2 and breaker.state == "open"

    assert provider.complete(ask(**short)).text == "b3"  # open: Anthropic is not called at all
    assert len(fake.requests) == 2

    clock.now += 31  # cool-down over: one trial call, which succeeds and closes the breaker
    answer = provider.complete(ask(deadline=clock.deadline(ONE_ATTEMPT)))
    assert (answer.engine, answer.text, breaker.state) == ("anthropic", "Back!", "closed")


def test_breaker_reopens_when_the_trial_call_fails() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(3):
        breaker.failure()
    assert not breaker.allow()
    clock.now += 11
    assert breaker.state == "half-open" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open"


# -- structured answers: the judge's cap, truncation, refusal ------------------------------------
def test_the_judges_request_carries_the_schema_once_and_a_cut_answer_is_reported_as_such() -> None:
    fake = FakeAnthropic(message_json('{"scores": {"complexity": {"score": 5, "reas', stop="max_tokens"))
    judge = Judge(fake.provider("claude-haiku-4-5"))
    conversation = Conversation(turns=(("user", "I go to the market yesterday."), ("assistant", "What did you buy?"),
                                       ("user", "Apples.")))
    request = judge.request(conversation, measure(conversation.learner, []))
    answer = judge.provider.complete(request)
    sent = fake.requests[0]
    assert sent["max_tokens"] == 8192 and sent["output_config"]["format"]["type"] == "json_schema"
    assert "additionalProperties" in json.dumps(sent["output_config"]["format"]["schema"])
    assert all('"properties"' not in block["text"] for block in sent["system"])  # no schema in the prompt
    assert answer.truncated


def test_a_refusal_is_an_answer_not_an_error_one_call_metered_once() -> None:
    """The engine returns the refusal with its usage (so it is metered once); callers turn it into
    a clear 422 (chat: tests/test_chat.py)."""
    clock = FakeClock()
    fake = FakeAnthropic(message_json(content=[], stop="refusal", stop_details={
        "type": "refusal", "category": "general_harms", "explanation": "The request could be harmful."}))
    client, _ = stubbed()
    bedrock = BedrockClients(client)
    chain, _ = production_chain(fake, bedrock)
    publisher = Publisher()

    answer = metered(chain, publisher).complete(ask(deadline=clock.deadline(CHAT_DEADLINE)))

    assert answer.refused and answer.refusal == "The request could be harmful." and answer.engine == "anthropic"
    assert len(fake.requests) == 1 and bedrock.read_timeouts == []  # no retry, no fallback
    assert len(publisher.events) == 1 and publisher.events[0].input_tokens == 50


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
    client, _ = stubbed(converse_ok(cacheReadInputTokens=5, cacheWriteInputTokens=3))
    publisher = Publisher()
    provider = FallbackProvider(FakeAnthropic(status(429, "rate_limit_error")).provider(),
                                BedrockProvider(client, HAIKU), CircuitBreaker(), emit=Metrics())
    answer = metered(provider, publisher, Quota(over=False)).complete(ask(deadline=FakeClock().deadline(ONE_ATTEMPT)))
    assert len(publisher.events) == 1
    event = publisher.events[0]
    assert (event.engine, event.model, event.owner, event.product, event.operation) == (
        "bedrock", HAIKU, OWNER, "tutor", "chat")
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


# -- caching figures ------------------------------------------------------------------------------
def test_the_tutor_and_judge_prompts_are_under_haiku_4_5s_cache_minimum_so_no_breakpoint_is_sent() -> None:
    from parley.analysis import prompt as analysis
    from parley.tutor.persona import TutorPersona, system_prompt

    tutor = sum(estimate_tokens(t) for t in system_prompt(TutorPersona("Emma", "UK", "advanced", "business")))
    judge = estimate_tokens(analysis.system_prompt())
    assert tutor + 540 < 4096 and judge < 4096  # 540: ChatHistoryTokens' default
    assert (tutor, judge) == (pytest.approx(490, abs=60), pytest.approx(545, abs=60))  # the figures in docs/ai.md
    fake = FakeAnthropic(message_json())
    history = tuple(Turn("user" if i % 2 == 0 else "assistant", "word " * 100) for i in range(8))
    fake.provider("claude-haiku-4-5").complete(AiRequest(
        system=system_prompt(TutorPersona("Emma", "UK", "advanced", "business")),
        messages=(*history, Turn("user", "Next?"))))
    assert "cache_control" not in json.dumps(fake.requests[0])


# -- the model table, the template and IAM --------------------------------------------------------
def test_the_default_bedrock_model_is_an_active_claude_through_a_profile_everywhere_it_is_set() -> None:
    template = load_template()
    parameter = template["Parameters"]["BedrockModelId"]
    assert parameter["Default"] == models.DEFAULT_BEDROCK_MODEL == AiEnv.load({}).bedrock_model_id
    import re

    pattern = re.compile(parameter["AllowedPattern"])
    geography, base = models.split_profile(models.DEFAULT_BEDROCK_MODEL)
    assert geography == "global" and models.find(base) is not None and pattern.match(models.DEFAULT_BEDROCK_MODEL)
    for model in models.MODELS:
        for geo in ("global", "us", "eu"):
            assert pattern.match(f"{geo}.{model.bedrock_id}")
    assert not pattern.match(HAIKU3)  # a bare foundation model id (and Claude 3 Haiku) is refused at deploy


def test_iam_allows_exactly_the_mapped_profiles_and_the_models_they_route_to() -> None:
    statements = load_template()["Resources"]["AiModelAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    profiles = by_sid["InvokeThroughTheInferenceProfiles"]
    routed = by_sid["InvokeTheModelsTheProfilesRouteTo"]

    def arns(statement: dict[str, Any]) -> list[str]:
        out = []
        for resource in statement["Resource"]:
            sub = resource["Fn::Sub"]
            out.append(sub if isinstance(sub, str) else sub[0])
        return out

    expected_models = {m.bedrock_id for m in models.MODELS}
    profile_arns = arns(profiles)
    assert profile_arns[0].endswith(":inference-profile/${BedrockModelId}")
    assert {a.split("inference-profile/${Geography}.")[1] for a in profile_arns[1:]} == expected_models
    model_arns = arns(routed)
    assert model_arns[0].endswith(":foundation-model/${Model}")  # BedrockModelId's own model
    assert {a.split("foundation-model/")[1] for a in model_arns[1:]} == expected_models
    assert all(":bedrock:*::foundation-model/" in a for a in model_arns)  # any Region, global's Region-less too
    condition = routed["Condition"]["ArnLike"]["bedrock:InferenceProfileArn"]["Fn::Sub"]
    assert condition.endswith(":${AWS::AccountId}:inference-profile/*")  # only through this account's profiles
    actions = {tuple(s["Action"]) for s in (profiles, routed)}
    assert actions == {("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")}


def test_the_configuration_alarm_watches_the_metric_the_fallback_layer_emits() -> None:
    alarm = load_template(ROOT / "stacks/monitoring.yaml")["Resources"]["AiConfigurationErrorAlarm"]["Properties"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    engines = {d["Value"] for m in alarm["Metrics"] if "MetricStat" in m
               for d in m["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "Engine"}
    assert names == {"ProviderConfigErrors"} and engines == {"anthropic", "bedrock"}
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_max_tokens_are_clamped_to_each_models_limit() -> None:
    assert models.clamp_max_tokens(100_000, HAIKU, "bedrock") == 64_000
    assert models.clamp_max_tokens(100_000, "claude-opus-4-6", "anthropic") == 100_000
    assert models.clamp_max_tokens(300, "claude-opus-4-6", "anthropic") == 300
    assert models.clamp_max_tokens(100_000, "claude-unknown-9", "anthropic") == 100_000
    assert judge_schema()["type"] == "object"


# -- factory ------------------------------------------------------------------------------------
def test_factory_builds_the_configured_chain() -> None:
    anthropic_env = AiEnv.load({"AI_PROVIDER": "anthropic_api", "ANTHROPIC_SECRET_NAME": "s"})
    chain = assemble(anthropic_env, bedrock_client=bedrock_client())
    assert isinstance(chain, FallbackProvider)
    assert (chain.primary.engine, chain.secondary.engine if chain.secondary else None) == ("anthropic", "bedrock")
    assert chain.secondary is not None and chain.secondary.model == HAIKU  # Haiku 4.5 falls back to Haiku 4.5
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
