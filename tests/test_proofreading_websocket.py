"""The proofreading WebSocket API: $connect (authorizer + connect), messages streamed to the
connection through moto's apigatewaymanagementapi, $disconnect, and gone connections."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from moto.apigatewaymanagementapi.models import ApiGatewayManagementApiBackend
from moto.core.exceptions import JsonRESTError

from local_stack.lambdas import FunctionRunner
from parley import keys
from parley.ai.types import AiAnswer, AiRequest, ProviderError, TokenUsage
from parley.proofreading import service
from parley.proofreading.websocket import FRAME_LIMIT_BYTES, MESSAGE_LIMIT_BYTES, split_text

DOMAIN = "abc123defg.execute-api.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def aws(module_aws: dict[str, str]) -> dict[str, str]:
    """One emulator for the module: every test connects as its own device, so they keep apart."""
    return module_aws


@pytest.fixture
def device() -> str:
    return f"browser-{uuid.uuid4().hex[:12]}"


class Gone(JsonRESTError):
    code = 410

    def __init__(self) -> None:
        super().__init__("GoneException", "The connection is gone.")


@dataclass
class Sockets:
    """What moto's @connections endpoint received, message by message; connections can go away."""

    frames: dict[str, list[bytes]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    gone_after: dict[str, int] = field(default_factory=dict)  # connection -> messages it takes first

    def messages(self, connection_id: str) -> list[dict[str, Any]]:
        return [json.loads(f) for f in self.frames.get(connection_id, [])]


@pytest.fixture
def sockets(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Sockets:
    seen = Sockets()

    def post(backend: Any, data: bytes, connection_id: str) -> None:
        received = seen.frames.setdefault(unquote(connection_id), [])  # moto keeps the path's %3D for "="
        connection_id = unquote(connection_id)
        if connection_id in seen.gone or len(received) >= seen.gone_after.get(connection_id, 10**9):
            raise Gone()
        received.append(bytes(data))

    monkeypatch.setattr(ApiGatewayManagementApiBackend, "post_to_connection", post)
    return seen


class Ws:
    """Events as API Gateway's WebSocket API sends them to the template's functions."""

    def __init__(self, runner: FunctionRunner) -> None:
        self.runner = runner

    def context(self, connection_id: str, route: str, event_type: str, **extra: Any) -> dict[str, Any]:
        return {"routeKey": route, "eventType": event_type, "connectionId": connection_id, "domainName": DOMAIN,
                "stage": "test", "apiId": "abc123defg", "requestId": str(uuid.uuid4()),
                "connectedAt": 1_700_000_000_000, **extra}

    def authorize(self, query: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
        return self.runner.invoke("WsAuthorizerFunction", {
            "type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123defg/test/$connect",
            "headers": headers or {}, "queryStringParameters": query or {},
            "requestContext": self.context("c-auth", "$connect", "CONNECT")})

    def connect(self, device_id: str) -> str:
        policy = self.authorize({"deviceId": device_id})
        connection_id = f"conn-{uuid.uuid4().hex[:10]}="
        result = self.runner.invoke("WsConnectFunction", {
            "headers": {"Host": DOMAIN}, "isBase64Encoded": False,
            "requestContext": self.context(connection_id, "$connect", "CONNECT",
                                           authorizer={"principalId": policy["principalId"], **policy["context"]})})
        assert result == {"statusCode": 200}
        return connection_id

    def send(self, connection_id: str, message: Any, route: str = "sendMessage") -> Any:
        body = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        return self.runner.invoke("WsMessageFunction", {
            "body": body, "isBase64Encoded": False, "requestContext": self.context(connection_id, route, "MESSAGE")})

    def disconnect(self, connection_id: str) -> Any:
        return self.runner.invoke("WsDisconnectFunction", {
            "requestContext": self.context(connection_id, "$disconnect", "DISCONNECT",
                                           disconnectStatusCode=1000)})


@pytest.fixture
def ws(runner: FunctionRunner, aws: dict[str, str], sockets: Sockets) -> Ws:
    return Ws(runner)


class Streamer:
    """A provider streaming a scripted answer in small deltas, optionally failing mid-way."""

    engine = "anthropic"
    model = "claude-test"

    def __init__(self, text: str, *, fail_after: int | None = None, delta: int = 37) -> None:
        self.text = text
        self.fail_after = fail_after
        self.delta = delta
        self.closed = False
        self.calls = 0

    def complete(self, request: AiRequest) -> AiAnswer:
        self.calls += 1
        return AiAnswer(text=self.text, engine="anthropic", model=self.model, usage=TokenUsage(50, 900))

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        self.calls += 1
        try:
            for n, start in enumerate(range(0, len(self.text), self.delta)):
                if self.fail_after is not None and n >= self.fail_after:
                    raise ProviderError("The engine dropped the stream.", engine="anthropic")
                yield self.text[start:start + self.delta]
            yield AiAnswer(text=self.text, engine="anthropic", model=self.model, usage=TokenUsage(50, 900))
        finally:
            self.closed = True


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Replace the deployment's engine with a Streamer: ``engine(streamer)``."""
    def install(streamer: Streamer) -> Streamer:
        monkeypatch.setattr(service, "build_provider", lambda env: streamer)
        return streamer

    return install


def conversation_items(aws: dict[str, str], owner: str) -> list[dict]:
    table = boto3.resource("dynamodb").Table(aws["Table"])
    return table.query(KeyConditionExpression=Key("PK").eq(owner) & Key("SK").begins_with("CONV"))["Items"]


def assert_frames_within_limits(sockets: Sockets, connection_id: str) -> None:
    sizes = [len(f) for f in sockets.frames[connection_id]]
    assert max(sizes) < FRAME_LIMIT_BYTES < MESSAGE_LIMIT_BYTES, max(sizes)


# -- connect / authorize / disconnect ---------------------------------------------------------------
def test_connect_records_the_owner_with_a_ttl(ws: Ws, device: str, aws: dict[str, str]) -> None:
    connection_id = ws.connect(device)
    item = boto3.resource("dynamodb").Table(aws["Table"]).get_item(
        Key={"PK": keys.connection_pk(connection_id), "SK": keys.CONNECTION_SK})["Item"]
    assert item["owner"] == f"DEVICE#{device}"
    assert 7_700 < int(item["expiresAt"]) - int(__import__("time").time()) <= 7_800


@pytest.mark.parametrize(("query", "headers"), [({"deviceId": "browser-device-01"}, {}),
                                                ({}, {"X-Device-Id": "browser-device-01"})])
def test_the_connect_authorizer_takes_the_device_id_from_query_or_header(ws: Ws, query: dict, headers: dict) -> None:
    policy = ws.authorize(query, headers)
    assert policy["context"]["owner"] == "DEVICE#browser-device-01"
    assert policy["context"]["ownerHash"] == policy["principalId"] != "DEVICE#browser-device-01"
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow" and statement["Resource"].endswith("/test/$connect")


@pytest.mark.parametrize("query", [{}, {"deviceId": "short"}, {"deviceId": "has spaces in it"}, {"token": "x"}])
def test_the_connect_authorizer_refuses_without_a_valid_device_id(ws: Ws, query: dict) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        ws.authorize(query)


def test_connect_without_an_authorizer_context_is_refused(ws: Ws, device: str, runner: FunctionRunner) -> None:
    result = runner.invoke("WsConnectFunction", {"requestContext": ws.context("c-x", "$connect", "CONNECT")})
    assert result["statusCode"] == 401


def test_disconnect_forgets_the_connection_and_later_messages_are_refused(ws: Ws, device: str, sockets: Sockets,
                                                                          aws: dict[str, str]) -> None:
    connection_id = ws.connect(device)
    assert ws.disconnect(connection_id) == {"statusCode": 200}
    assert "Item" not in boto3.resource("dynamodb").Table(aws["Table"]).get_item(
        Key={"PK": keys.connection_pk(connection_id), "SK": keys.CONNECTION_SK})
    ws.send(connection_id, {"action": "ping"}, route="ping")
    assert sockets.messages(connection_id)[-1]["error"]["code"] == "UNAUTHORIZED"


# -- messages ---------------------------------------------------------------------------------------
def test_ping_pongs(ws: Ws, device: str, sockets: Sockets) -> None:
    connection_id = ws.connect(device)
    assert ws.send(connection_id, {"action": "ping", "requestId": "p1"}, route="ping") == {"statusCode": 200}
    (pong,) = sockets.messages(connection_id)
    assert pong["type"] == "pong" and pong["requestId"] == "p1"


@pytest.mark.parametrize(("body", "code"), [("{not json", "MALFORMED_JSON"),
                                            ({"action": "dance"}, "VALIDATION_ERROR"),
                                            ({"action": "sendMessage", "text": ""}, "VALIDATION_ERROR"),
                                            ({"action": "sendMessage", "text": "x", "mode": "poem"},
                                             "VALIDATION_ERROR")])
def test_bad_messages_get_a_structured_error(ws: Ws, device: str, sockets: Sockets, body: Any, code: str) -> None:
    connection_id = ws.connect(device)
    ws.send(connection_id, body, route="$default")
    (error,) = sockets.messages(connection_id)
    assert error["type"] == "error" and error["error"]["code"] == code and error["error"]["message"]


def test_offline_proofreading_streams_then_completes_with_the_result(ws: Ws, device: str, sockets: Sockets,
                                                                    aws: dict[str, str]) -> None:
    connection_id = ws.connect(device)
    ws.send(connection_id, {"action": "sendMessage", "requestId": "r1", "mode": "proofread",
                            "text": "나는 할수있다. teh end"})
    messages = sockets.messages(connection_id)
    assert messages[0]["type"] == "accepted" and messages[-1]["type"] == "complete"
    streamed = "".join(m["text"] for m in messages if m["type"] == "delta")
    assert json.loads(streamed)["corrections"]  # the model's raw answer, as it was written
    result = messages[-1]["result"]
    assert result["correctedText"] == "나는 할 수 있다. the end"
    assert {m["requestId"] for m in messages} == {"r1"}
    assert len(conversation_items(aws, f"DEVICE#{device}")) == 2  # the conversation and its exchange


def test_a_long_answer_streams_in_frames_under_the_limits_and_arrives_whole(
        ws: Ws, device: str, sockets: Sockets, engine: Any, aws: dict[str, str]) -> None:
    answer = ("교열 결과를 설명합니다. \"인용\"과 줄바꿈\n도 있습니다. 😀 " * 4_000)  # ~ 300 KB of UTF-8
    streamer = engine(Streamer(answer, delta=5_000))
    connection_id = ws.connect(device)

    ws.send(connection_id, {"action": "sendMessage", "requestId": "r2", "mode": "chat", "text": "설명해 주세요"})

    messages = sockets.messages(connection_id)
    assert_frames_within_limits(sockets, connection_id)
    deltas = [m for m in messages if m["type"] == "delta"]
    assert "".join(m["text"] for m in deltas) == answer
    assert [m["seq"] for m in deltas] == list(range(1, len(deltas) + 1))
    parts = [m for m in messages if m["type"] == "result-part"]
    complete = messages[-1]
    assert complete["type"] == "complete" and complete["result"] is None and complete["resultParts"] == len(parts) > 1
    result = json.loads("".join(p["data"] for p in sorted(parts, key=lambda p: p["index"])))
    assert result["text"] == answer and result["usage"]["outputTokens"] == 900
    assert complete["summary"]["usage"] == result["usage"] and complete["summary"]["engine"] == "anthropic"
    assert streamer.calls == 1


def test_a_stream_failing_midway_sends_an_error_and_saves_nothing(ws: Ws, device: str, sockets: Sockets, engine: Any,
                                                                 aws: dict[str, str]) -> None:
    engine(Streamer("x" * 5_000, fail_after=20, delta=50))
    connection_id = ws.connect(device)

    assert ws.send(connection_id, {"action": "sendMessage", "requestId": "r3", "mode": "chat",
                                   "text": "hello"}) == {"statusCode": 200}

    messages = sockets.messages(connection_id)
    assert any(m["type"] == "delta" for m in messages)  # some text had reached the client
    assert messages[-1] == {"type": "error", "requestId": "r3", "error": {
        "code": "AI_UNAVAILABLE", "message": "The engine dropped the stream.", "details": []}}
    assert not any(m["type"] == "complete" for m in messages)
    assert conversation_items(aws, f"DEVICE#{device}") == []


def test_a_gone_connection_is_cleaned_up_and_the_stream_released(ws: Ws, device: str, sockets: Sockets, engine: Any,
                                                                aws: dict[str, str]) -> None:
    streamer = engine(Streamer("y" * 20_000, delta=500))
    connection_id = ws.connect(device)
    sockets.gone_after[connection_id] = 3  # the client leaves after the third message

    assert ws.send(connection_id, {"action": "sendMessage", "mode": "chat", "text": "hi"}) == {"statusCode": 200}

    assert len(sockets.frames[connection_id]) == 3
    assert streamer.closed
    assert "Item" not in boto3.resource("dynamodb").Table(aws["Table"]).get_item(
        Key={"PK": keys.connection_pk(connection_id), "SK": keys.CONNECTION_SK})
    assert conversation_items(aws, f"DEVICE#{device}") == []


def test_chat_continues_a_conversation_with_its_history(ws: Ws, device: str, sockets: Sockets, engine: Any) -> None:
    seen: list[AiRequest] = []

    class Recorder(Streamer):
        def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
            seen.append(request)
            yield from super().stream(request)

    engine(Recorder("An answer."))
    connection_id = ws.connect(device)
    ws.send(connection_id, {"action": "sendMessage", "mode": "chat", "text": "First question"})
    first = sockets.messages(connection_id)[-1]["result"]
    ws.send(connection_id, {"action": "sendMessage", "mode": "chat", "text": "Second question",
                            "conversationId": first["conversationId"]})
    second = sockets.messages(connection_id)[-1]["result"]
    assert (second["conversationId"], second["turn"]) == (first["conversationId"], 2)
    assert [(t.role, t.text) for t in seen[1].messages] == [
        ("user", "First question"), ("assistant", "An answer."), ("user", "Second question")]


def test_errors_before_the_model_is_called_arrive_as_error_messages(
        ws: Ws, device: str, sockets: Sockets, engine: Any) -> None:
    streamer = engine(Streamer("never"))
    connection_id = ws.connect(device)
    ws.send(connection_id, {"action": "sendMessage", "requestId": "r4", "text": "가" * 10_001})
    ws.send(connection_id, {"action": "sendMessage", "requestId": "r5", "text": "x",
                            "promptId": "01JAAAAAAAAAAAAAAAAAAAAAAA"})
    codes = [(m["requestId"], m["error"]["code"]) for m in sockets.messages(connection_id)]
    assert codes == [("r4", "VALIDATION_ERROR"), ("r5", "NOT_FOUND")]
    assert streamer.calls == 0


def test_split_text_respects_the_byte_budget_with_escapes_and_multibyte() -> None:
    text = 'a"\\\n가😀' * 1_000
    pieces = split_text(text, 1_000)
    assert "".join(pieces) == text
    assert all(len(json.dumps(p, ensure_ascii=False).encode()) - 2 <= 1_000 for p in pieces)
