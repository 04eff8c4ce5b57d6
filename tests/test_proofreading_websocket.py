"""The proofreading WebSocket API: $connect (authorizer + connect), messages acknowledged by the route
and answered by the function's own asynchronous invocation, streamed to the connection through moto's
apigatewaymanagementapi, $disconnect, gone connections, and resends (replayed or resumed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from moto.apigatewaymanagementapi.models import ApiGatewayManagementApiBackend
from moto.core.exceptions import JsonRESTError

from local_stack.lambdas import FunctionRunner, direct_invocations
from parley.ai.errors import ProviderError
from parley.ai.types import AiAnswer, AiRequest, TokenUsage
from parley.core import clients
from parley.data import keys
from parley.proofreading import frames, service
from parley.proofreading.frames import FRAME_LIMIT_BYTES, MESSAGE_LIMIT_BYTES, split_text

DOMAIN = "abc123defg.execute-api.us-east-1.amazonaws.com"


pytestmark = pytest.mark.shared_aws  # its tests keep apart by owner: one emulator for the module


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
    """Events as API Gateway's WebSocket API sends them to the template's functions. The message
    function's asynchronous invocations (the answers) wait in ``pending`` until ``run_pending``."""

    def __init__(self, runner: FunctionRunner, pending: list[Callable[[], Any]]) -> None:
        self.runner = runner
        self.pending = pending

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

    def send(self, connection_id: str, message: Any, route: str = "sendMessage", *, answer: bool = True) -> Any:
        """The route's invocation; then (``answer``) the asynchronous invocations it started."""
        body = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        result = self.runner.invoke("WsMessageFunction", {
            "body": body, "isBase64Encoded": False, "requestContext": self.context(connection_id, route, "MESSAGE")})
        if answer:
            self.run_pending()
        return result

    def run_pending(self) -> int:
        ran = 0
        while self.pending:
            self.pending.pop(0)()
            ran += 1
        return ran

    def disconnect(self, connection_id: str) -> Any:
        return self.runner.invoke("WsDisconnectFunction", {
            "requestContext": self.context(connection_id, "$disconnect", "DISCONNECT",
                                           disconnectStatusCode=1000)})


@pytest.fixture
def ws(runner: FunctionRunner, aws: dict[str, str], sockets: Sockets) -> Iterator[Ws]:
    pending: list[Callable[[], Any]] = []
    undo = direct_invocations(runner, run_async=pending.append)  # lambda:Invoke (Event) -> pending
    clients.reset()  # a client copies the session's hooks when it is made: make the lambda client now
    yield Ws(runner, pending)
    undo()
    clients.reset()


@pytest.fixture
def grace(runner: FunctionRunner, monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Set how long an answer waits for a client that went away (the template says 20 s)."""
    module = runner.module("WsMessageFunction")

    def set_grace(seconds: float) -> None:
        monkeypatch.setattr(module, "ENV", module.ENV.model_copy(update={"ws_resume_grace_seconds": seconds}))

    return set_grace


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
                                                                aws: dict[str, str], grace: Any) -> None:
    grace(0)  # no waiting for the client to come back
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
    messages = sockets.messages(connection_id)
    # Too long is refused by the route itself; a missing prompt is found by the answer, after "accepted".
    assert [(m["type"], m["requestId"]) for m in messages] == [("error", "r4"), ("accepted", "r5"), ("error", "r5")]
    codes = [(m["requestId"], m["error"]["code"]) for m in messages if m["type"] == "error"]
    assert codes == [("r4", "VALIDATION_ERROR"), ("r5", "NOT_FOUND")]  # the schema's maxLength, as over REST
    assert streamer.calls == 0


def test_split_text_respects_the_byte_budget_with_escapes_and_multibyte() -> None:
    text = 'a"\\\n가😀' * 1_000
    pieces = split_text(text, 1_000)
    assert "".join(pieces) == text
    assert all(len(json.dumps(p, ensure_ascii=False).encode()) - 2 <= 1_000 for p in pieces)


# -- acknowledged at once, answered by the function's own asynchronous invocation (issue 16) -------
def request_item(aws: dict[str, str], owner: str, request_id: str) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(aws["Table"]).get_item(
        Key={"PK": owner, "SK": keys.ws_request_sk(request_id)})["Item"]


def test_the_route_only_acknowledges_and_the_answer_runs_in_its_own_invocation(
        ws: Ws, device: str, sockets: Sockets, engine: Any, aws: dict[str, str]) -> None:
    streamer = engine(Streamer("An answer that takes its time.", delta=5))
    connection_id = ws.connect(device)

    assert ws.send(connection_id, {"action": "sendMessage", "requestId": "a1", "mode": "chat", "text": "hi"},
                   answer=False) == {"statusCode": 200}

    # Given back to API Gateway with only the acknowledgement sent and no model call made...
    assert sockets.messages(connection_id) == [{"type": "accepted", "requestId": "a1", "mode": "chat"}]
    assert streamer.calls == 0 and len(ws.pending) == 1
    assert request_item(aws, f"DEVICE#{device}", "a1")["status"] == "queued"
    # ...the answer comes from the asynchronous invocation.
    assert ws.run_pending() == 1
    messages = sockets.messages(connection_id)
    assert messages[-1]["type"] == "complete" and messages[-1]["result"]["text"] == "An answer that takes its time."
    assert "replayed" not in messages[-1]
    assert request_item(aws, f"DEVICE#{device}", "a1")["status"] == "complete"
    assert streamer.calls == 1


def test_a_request_without_an_id_gets_one_in_the_acknowledgement(ws: Ws, device: str, sockets: Sockets) -> None:
    connection_id = ws.connect(device)
    ws.send(connection_id, {"action": "sendMessage", "text": "teh end"})
    messages = sockets.messages(connection_id)
    rid = messages[0]["requestId"]
    assert messages[0]["type"] == "accepted" and rid.startswith("r-")
    assert {m["requestId"] for m in messages} == {rid} and messages[-1]["type"] == "complete"


def test_a_resent_finished_request_is_replayed_without_a_model_call(
        ws: Ws, device: str, sockets: Sockets, engine: Any, aws: dict[str, str]) -> None:
    streamer = engine(Streamer('{"corrections": [{"original": "teh", "replacement": "the", "offset": 0, '
                               '"category": "spelling", "explanation": "Typo."}]}'))
    first = ws.connect(device)
    message = {"action": "sendMessage", "requestId": "p1", "mode": "proofread", "text": "teh end"}
    ws.send(first, message)
    original = sockets.messages(first)[-1]
    assert original["type"] == "complete" and original["result"]["correctedText"] == "the end"

    again = ws.connect(device)  # the client reconnected and resends what it had not seen finish
    ws.send(again, message)

    (replay,) = sockets.messages(again)
    assert replay == {**original, "replayed": True}
    assert streamer.calls == 1 and ws.pending == []
    assert len(conversation_items(aws, f"DEVICE#{device}")) == 2  # one conversation, one exchange


def test_a_resent_failed_request_replays_its_error(ws: Ws, device: str, sockets: Sockets, engine: Any) -> None:
    streamer = engine(Streamer("x" * 5_000, fail_after=2, delta=50))
    connection_id = ws.connect(device)
    message = {"action": "sendMessage", "requestId": "f1", "mode": "chat", "text": "hello"}
    ws.send(connection_id, message)
    failure = sockets.messages(connection_id)[-1]
    assert failure["error"]["code"] == "AI_UNAVAILABLE"

    ws.send(connection_id, message)

    assert sockets.messages(connection_id)[-1] == {**failure, "replayed": True}
    assert streamer.calls == 1


def test_a_request_id_reused_for_another_text_is_refused(ws: Ws, device: str, sockets: Sockets, engine: Any) -> None:
    streamer = engine(Streamer("Fine."))
    connection_id = ws.connect(device)
    ws.send(connection_id, {"action": "sendMessage", "requestId": "c1", "mode": "chat", "text": "one"})
    ws.send(connection_id, {"action": "sendMessage", "requestId": "c1", "mode": "chat", "text": "two"})
    last = sockets.messages(connection_id)[-1]
    assert last["type"] == "error" and last["error"]["code"] == "CONFLICT"
    assert "new requestId" in last["error"]["message"]
    assert streamer.calls == 1


def test_another_owner_cannot_replay_or_take_over_a_request(ws: Ws, device: str, sockets: Sockets,
                                                             engine: Any) -> None:
    streamer = engine(Streamer("Mine."))
    mine = ws.connect(device)
    theirs = ws.connect(f"other-{uuid.uuid4().hex[:12]}")
    message = {"action": "sendMessage", "requestId": "o1", "mode": "chat", "text": "hi"}
    ws.send(mine, message)
    ws.send(theirs, message)  # the same requestId from another owner is another request
    assert sockets.messages(theirs)[0]["type"] == "accepted"
    assert "replayed" not in sockets.messages(theirs)[-1]
    assert streamer.calls == 2


class Reconnecting(Streamer):
    """Streams; after ``at`` deltas the client shows up on another connection and resends."""

    def __init__(self, text: str, *, at: int, resend: Callable[[], None], delta: int = 40) -> None:
        super().__init__(text, delta=delta)
        self.at = at
        self.resend = resend

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        for n, part in enumerate(super().stream(request)):
            if n == self.at:
                self.resend()
            yield part


def assert_resumed_whole(messages: list[dict[str, Any]], answer: str) -> dict[str, Any]:
    """The new connection's frames: ``resumed`` with the text so far, then contiguous deltas, then
    ``complete`` - together exactly the answer."""
    assert messages[0]["type"] == "resumed"
    seq = messages[0]["seq"]
    text = messages[0]["text"]
    for m in messages[1:-1]:
        assert m["type"] == "delta" and m["seq"] == seq + 1, m
        seq, text = m["seq"], text + m["text"]
    assert text == answer
    assert messages[-1]["type"] == "complete"
    return messages[-1]


def test_a_client_that_comes_back_mid_answer_gets_the_text_so_far_then_the_rest(
        ws: Ws, device: str, sockets: Sockets, engine: Any, aws: dict[str, str]) -> None:
    answer = "".join(f"sentence {n}. " for n in range(400))
    first = ws.connect(device)
    second: list[str] = []
    message = {"action": "sendMessage", "requestId": "m1", "mode": "chat", "text": "tell me"}

    def reconnect_and_resend() -> None:
        sockets.gone.add(first)  # the old connection is dead: the next post answers 410
        second.append(ws.connect(device))
        ws.send(second[0], message, answer=False)  # the route: the request is running, so it moves

    streamer = engine(Reconnecting(answer, at=30, resend=reconnect_and_resend))
    ws.send(first, message)

    old = sockets.messages(first)
    assert old[0]["type"] == "accepted" and all(m["type"] == "delta" for m in old[1:])
    complete = assert_resumed_whole(sockets.messages(second[0]), answer)
    assert complete["result"]["text"] == answer
    assert sockets.messages(second[0])[0]["seq"] >= old[-1]["seq"]  # nothing the client had is missing
    assert streamer.calls == 1 and ws.pending == []
    assert request_item(aws, f"DEVICE#{device}", "m1")["connectionId"] == second[0]
    assert len(conversation_items(aws, f"DEVICE#{device}")) == 2


def test_an_answer_follows_a_resend_on_another_live_connection(
        ws: Ws, device: str, sockets: Sockets, engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames, "FOLLOW_CHECK_SECONDS", 0.0)  # look up the connection on every post
    answer = "word " * 2_000
    first = ws.connect(device)
    second: list[str] = []
    message = {"action": "sendMessage", "requestId": "l1", "mode": "chat", "text": "go"}

    def resend_elsewhere() -> None:
        second.append(ws.connect(device))  # e.g. a second tab; the first connection stays open
        ws.send(second[0], message, answer=False)

    streamer = engine(Reconnecting(answer, at=10, resend=resend_elsewhere))
    ws.send(first, message)

    assert sockets.messages(first)[-1]["type"] == "delta"  # the first connection got no more once it moved
    assert_resumed_whole(sockets.messages(second[0]), answer)
    assert streamer.calls == 1


def test_a_resend_before_the_answer_started_moves_it_there(ws: Ws, device: str, sockets: Sockets,
                                                           engine: Any) -> None:
    streamer = engine(Streamer("Short answer.", delta=4))
    first = ws.connect(device)
    message = {"action": "sendMessage", "requestId": "q1", "mode": "chat", "text": "hi"}
    ws.send(first, message, answer=False)
    second = ws.connect(device)
    ws.send(second, message, answer=False)  # still queued: it moves, nothing runs twice
    assert sockets.messages(second) == [] and len(ws.pending) == 1

    ws.run_pending()

    assert sockets.messages(first) == [{"type": "accepted", "requestId": "q1", "mode": "chat"}]
    messages = sockets.messages(second)
    assert messages[0] == {"type": "resumed", "requestId": "q1", "seq": 0, "text": ""}
    assert_resumed_whole(messages, "Short answer.")
    assert streamer.calls == 1


def test_a_request_whose_answer_never_started_runs_again_on_a_resend(
        ws: Ws, device: str, sockets: Sockets, engine: Any, aws: dict[str, str]) -> None:
    streamer = engine(Streamer("Eventually."))
    connection_id = ws.connect(device)
    message = {"action": "sendMessage", "requestId": "s1", "mode": "chat", "text": "hi"}
    ws.send(connection_id, message, answer=False)
    stale = ws.pending.pop()  # Lambda dropped the invocation (older than MaximumEventAgeInSeconds)
    boto3.resource("dynamodb").Table(aws["Table"]).update_item(
        Key={"PK": f"DEVICE#{device}", "SK": keys.ws_request_sk("s1")},
        UpdateExpression="SET leaseUntil = :past", ExpressionAttributeValues={":past": 1})

    ws.send(connection_id, message)  # the resend runs it
    stale()  # a late delivery of the first invocation changes nothing

    messages = sockets.messages(connection_id)
    assert [m["type"] for m in messages].count("accepted") == 2
    assert [m["type"] for m in messages].count("complete") == 1
    assert streamer.calls == 1


def test_a_client_gone_past_the_grace_ends_the_answer_and_a_resend_replays_why(
        ws: Ws, device: str, sockets: Sockets, engine: Any, aws: dict[str, str], grace: Any) -> None:
    grace(0)
    streamer = engine(Streamer("z" * 10_000, delta=500))
    first = ws.connect(device)
    sockets.gone_after[first] = 2
    message = {"action": "sendMessage", "requestId": "g1", "mode": "chat", "text": "hi"}
    ws.send(first, message)
    assert streamer.closed and conversation_items(aws, f"DEVICE#{device}") == []

    again = ws.connect(device)
    ws.send(again, message)

    (replay,) = sockets.messages(again)
    assert replay["replayed"] is True and replay["error"]["code"] == "CONNECTION_CLOSED"
    assert streamer.calls == 1


def test_an_answer_that_cannot_be_started_is_reported_and_forgotten(
        ws: Ws, device: str, sockets: Sockets, engine: Any, aws: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    streamer = engine(Streamer("Later."))
    connection_id = ws.connect(device)
    message = {"action": "sendMessage", "requestId": "d1", "mode": "chat", "text": "hi"}
    real_client = clients.client

    class Unreachable:
        def invoke(self, **_: Any) -> None:
            raise ConnectionError("Lambda is unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(clients, "client", lambda service, **kw: Unreachable() if service == "lambda"
                      else real_client(service, **kw))
        ws.send(connection_id, message)

    assert [m["type"] for m in sockets.messages(connection_id)] == ["accepted", "error"]
    assert sockets.messages(connection_id)[-1]["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "Item" not in boto3.resource("dynamodb").Table(aws["Table"]).get_item(
        Key={"PK": f"DEVICE#{device}", "SK": keys.ws_request_sk("d1")})
    ws.send(connection_id, message)  # so the resend simply runs
    assert sockets.messages(connection_id)[-1]["type"] == "complete" and streamer.calls == 1


def test_ping_writes_nothing(ws: Ws, device: str, sockets: Sockets) -> None:
    connection_id = ws.connect(device)
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    clients.table("parley-test").meta.client.meta.events.register("before-call.dynamodb.*", count)
    ws.send(connection_id, {"action": "ping", "requestId": "p9"}, route="ping")
    assert sockets.messages(connection_id)[-1]["type"] == "pong"
    assert calls == ["GetItem"]  # the connection's owner; no request record, no write
    assert ws.pending == []
