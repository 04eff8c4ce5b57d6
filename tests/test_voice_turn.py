"""The streamed tutor turn (WebSocket route ``tutorTurn``): through the template's function, on moto, with the
local Polly speaking real MP3 - frame order, audio, saving and metering once, quota, disconnects, fallback."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto.apigatewaymanagementapi.models import ApiGatewayManagementApiBackend
from moto.core.exceptions import JsonRESTError

from local_stack import audio
from local_stack.lambdas import FunctionRunner
from local_stack.speech import emulate_speech
from parley.ai.errors import ProviderError
from parley.ai.fallback import CircuitBreaker, FallbackProvider
from parley.ai.types import AiAnswer, AiRequest, TokenUsage
from parley.core.ids import utcnow
from parley.data import keys
from parley.proofreading.frames import FRAME_LIMIT_BYTES
from parley.speech.voices import choose_voice
from parley.usage.events import UsageEvent
from parley.usage.publisher import PublishOutcome, UsagePublisher
from tests.conftest import ApiClient, atomic_dynamodb

DOMAIN = "abc123defg.execute-api.us-east-1.amazonaws.com"
REPLY = ("That sounds like a lovely weekend, and hiking is great exercise. Where did you go? "
         "Did you see anything beautiful on the way?")

KOREAN = "주말이 정말 즐거웠겠네요. 어디로 하이킹 갔어요? 가는 길에 아름다운 것을 봤나요?"


class Gone(JsonRESTError):
    code = 410

    def __init__(self) -> None:
        super().__init__("GoneException", "The connection is gone.")


@dataclass
class Sockets:
    """What the @connections endpoint received, in order; a connection can go away after n frames."""

    frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    gone_after: dict[str, int] = field(default_factory=dict)
    first_audio: threading.Event = field(default_factory=threading.Event)
    timeline: list[str] = field(default_factory=list)

    def of(self, connection_id: str) -> list[dict[str, Any]]:
        return self.frames.get(connection_id, [])


@pytest.fixture
def sockets(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Sockets:
    seen = Sockets()

    def post(backend: Any, data: bytes, connection_id: str) -> None:
        connection_id = unquote(connection_id)
        received = seen.frames.setdefault(connection_id, [])
        if len(received) >= seen.gone_after.get(connection_id, 10**9):
            raise Gone()
        frame = json.loads(data)
        received.append(frame)
        seen.sizes.append(len(data))
        seen.timeline.append(f"frame:{frame['type']}")
        if frame["type"] == "audio":
            seen.first_audio.set()

    monkeypatch.setattr(ApiGatewayManagementApiBackend, "post_to_connection", post)
    return seen


@pytest.fixture(autouse=True)
def atomic() -> Iterator[None]:
    """The turn's threads (the speech worker, the learner's save, the quota check, the claim) call DynamoDB
    at once, which applies each request atomically; moto's in-process backend needs its lock for that."""
    with atomic_dynamodb():
        yield


@pytest.fixture
def speech(aws: dict[str, str]) -> Iterator[None]:
    with emulate_speech():
        yield


@dataclass
class Usage:
    events: list[UsageEvent] = field(default_factory=list)

    def of(self, operation: str) -> list[UsageEvent]:
        return [e for e in self.events if e.operation == operation]


@pytest.fixture
def usage(monkeypatch: pytest.MonkeyPatch) -> Usage:
    seen = Usage()
    original = UsagePublisher.publish

    def publish(self: UsagePublisher, event: UsageEvent) -> PublishOutcome:
        seen.events.append(event)
        return original(self, event)

    monkeypatch.setattr(UsagePublisher, "publish", publish)
    return seen


class Streamer:
    """A provider streaming a scripted reply a word at a time. With ``wait_for`` it holds the rest of the
    reply after the first sentence until that event is set (the first audio frame posted) - so a test can
    show the first audio goes out while the model is still writing."""

    engine = "anthropic"
    model = "claude-test"

    def __init__(self, text: str = REPLY, *, timeline: list[str] | None = None,
                 wait_for: threading.Event | None = None, fail_before_text: bool = False,
                 engine: str = "anthropic") -> None:
        self.text = text
        self.timeline = timeline if timeline is not None else []
        self.wait_for = wait_for
        self.fail_before_text = fail_before_text
        self.engine = engine  # type: ignore[misc]
        self.calls = 0

    def complete(self, request: AiRequest) -> AiAnswer:  # POST /chat, the envelope's chat, and translations
        self.calls += 1
        if request.purpose == "translation":
            assert request.messages[-1].text.strip() == self.text.strip() and "Korean" in request.system[0]
            return AiAnswer(text=KOREAN, engine=self.engine, model=self.model,  # type: ignore[arg-type]
                            usage=TokenUsage(input_tokens=80, output_tokens=40))
        return AiAnswer(text=self.text, engine=self.engine, model=self.model,  # type: ignore[arg-type]
                        usage=TokenUsage(input_tokens=120, output_tokens=30))

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        self.calls += 1
        if self.fail_before_text:
            raise ProviderError("Overloaded.", engine=self.engine, retryable=False, status=529)
        words = self.text.split(" ")
        for n, word in enumerate(words):
            yield word + (" " if n + 1 < len(words) else "")
            if self.wait_for is not None and word.endswith(","):  # the first clause is written
                assert self.wait_for.wait(timeout=30), "no audio was sent while the model was writing"
        self.timeline.append("model:done")
        yield AiAnswer(text=self.text, engine=self.engine, model=self.model,  # type: ignore[arg-type]
                       usage=TokenUsage(input_tokens=120, output_tokens=30))


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(provider: Any) -> Any:
        monkeypatch.setattr("parley.tutor.chat.build_provider", lambda env: provider)
        return provider

    return install


class Ws:
    def __init__(self, runner: FunctionRunner) -> None:
        self.runner = runner

    def context(self, connection_id: str, route: str, event_type: str, **extra: Any) -> dict[str, Any]:
        return {"routeKey": route, "eventType": event_type, "connectionId": connection_id, "domainName": DOMAIN,
                "stage": "test", "apiId": "abc123defg", "requestId": str(uuid.uuid4()), **extra}

    def connect(self, device_id: str) -> str:
        policy = self.runner.invoke("WsAuthorizerFunction", {
            "type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123defg/test/$connect",
            "headers": {}, "queryStringParameters": {"deviceId": device_id},
            "requestContext": self.context("c-auth", "$connect", "CONNECT")})
        connection_id = f"conn-{uuid.uuid4().hex[:10]}="
        assert self.runner.invoke("WsConnectFunction", {
            "headers": {"Host": DOMAIN}, "isBase64Encoded": False,
            "requestContext": self.context(connection_id, "$connect", "CONNECT",
                                           authorizer={"principalId": policy["principalId"], **policy["context"]})
        }) == {"statusCode": 200}
        return connection_id

    def turn(self, connection_id: str, message: Any) -> Any:
        body = message if isinstance(message, str) else json.dumps(message)
        return self.runner.invoke("WsTutorTurnFunction", {
            "body": body, "isBase64Encoded": False,
            "requestContext": self.context(connection_id, "tutorTurn", "MESSAGE")})


@pytest.fixture
def ws(runner: FunctionRunner, aws: dict[str, str], sockets: Sockets) -> Ws:
    return Ws(runner)


@pytest.fixture
def device() -> str:
    return f"voice-{uuid.uuid4().hex[:12]}"


def start_session(api: ApiClient, device: str, **settings: str) -> str:
    response = api.as_device(device).post("/sessions", {"topic": "daily", **settings})
    assert response.status == 201, response.body
    return str(response.json()["sessionId"])


def turn_message(session_id: str, message_id: str = "turn-0000-0001", **extra: Any) -> dict[str, Any]:
    return {"action": "tutorTurn", "requestId": "t-1", "sessionId": session_id, "messageId": message_id,
            "text": "I went hiking with my friends last weekend.", "inputMode": "voice", **extra}


def types(frames: list[dict[str, Any]]) -> list[str]:
    return [f["type"] for f in frames]


def audio_of(frames: list[dict[str, Any]]) -> dict[int, bytes]:
    """Each sentence's MP3, its parts joined."""
    parts: dict[int, list[dict[str, Any]]] = {}
    for f in frames:
        if f["type"] == "audio":
            parts.setdefault(f["sentence"], []).append(f)
    joined = {}
    for sentence, pieces in parts.items():
        assert [p["part"] for p in pieces] == list(range(pieces[0]["parts"]))
        joined[sentence] = base64.b64decode("".join(p["data"] for p in pieces))
    return joined


def messages_of(api: ApiClient, device: str, session_id: str) -> list[dict[str, Any]]:
    response = api.as_device(device).get(f"/sessions/{session_id}")
    assert response.status == 200, response.body
    return list(response.json()["messages"])


# -- the stream ---------------------------------------------------------------------------------------
def test_the_reply_streams_as_text_then_each_sentences_audio_in_the_sessions_voice(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage) -> None:
    streamer = engine(Streamer(timeline=sockets.timeline, wait_for=sockets.first_audio))
    session_id = start_session(api, device, accent="UK", gender="male")
    connection_id = ws.connect(device)

    assert ws.turn(connection_id, turn_message(session_id)) == {"statusCode": 200}

    frames = sockets.of(connection_id)
    assert frames[0] == {"type": "accepted", "requestId": "t-1", "messageId": "turn-0000-0001"}
    assert types(frames)[-1] == "complete" and all(f["requestId"] == "t-1" for f in frames)
    # The first audio went out while the model was still writing (the Streamer waited for it).
    assert sockets.timeline.index("frame:audio") < sockets.timeline.index("model:done")
    # Each sentence's audio comes after the text that completes it.
    text_so_far = ""
    sentences: dict[int, str] = {}
    for f in frames:
        if f["type"] == "text":
            text_so_far += f["text"]
        elif f["type"] == "audio" and f["part"] == 0:
            assert f["text"] in text_so_far, (f["text"], text_so_far)
            sentences[f["sentence"]] = f["text"]
    assert text_so_far.strip() == REPLY
    assert sentences == {0: "That sounds like a lovely weekend,", 1: "and hiking is great exercise.",
                         2: "Where did you go?", 3: "Did you see anything beautiful on the way?"}
    assert [f.get("clause", False) for f in frames if f["type"] == "audio" and f["part"] == 0] == \
        [True, False, False, False]
    # Every audio frame: valid MP3, in the session's voice (UK male: Brian, neural: Polly's 24 kHz).
    voice = choose_voice("UK", "male")
    assert {(f["voice"], f["engine"], f["contentType"]) for f in frames if f["type"] == "audio"} == \
        {(voice.voice_id, voice.engine, "audio/mpeg")}
    for mp3 in audio_of(frames).values():
        decoded = audio.decode(mp3)
        assert decoded.media_formats == {"mp3"} and decoded.seconds > 0.3 and decoded.source_rate == 24000
    assert max(sockets.sizes) < FRAME_LIMIT_BYTES
    # The saved turn: the learner's message and the reply, once; metered once (the model and each sentence).
    complete = frames[-1]["turn"]
    assert complete["reply"] == REPLY and complete["engine"] == "anthropic" and complete["replayed"] is False
    saved = messages_of(api, device, session_id)
    assert [(m["role"], m["content"]) for m in saved] == [
        ("user", "I went hiking with my friends last weekend."), ("assistant", REPLY)]
    assert complete["replyMessage"]["messageId"] == saved[1]["messageId"]
    assert streamer.calls == 1 and len(usage.of("chat")) == 1 and len(usage.of("tts")) == 4
    assert sum(e.characters or 0 for e in usage.of("tts")) == sum(len(s) for s in sentences.values())


def test_a_large_sentence_audio_is_split_into_parts_under_the_frame_limit(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any) -> None:
    long_sentence = " ".join(["We walked along the river and talked about the mountains"] * 6) + "."
    engine(Streamer(long_sentence))
    session_id = start_session(api, device)
    connection_id = ws.connect(device)
    ws.turn(connection_id, turn_message(session_id))
    frames = sockets.of(connection_id)
    parts = [f for f in frames if f["type"] == "audio"]
    assert len(parts) > 1 and {f["parts"] for f in parts} == {len(parts)}
    assert max(sockets.sizes) < 31 * 1024
    assert audio.decode(audio_of(frames)[0]).seconds > 5


# -- idempotency, redelivery, disconnects ----------------------------------------------------------------
def test_a_resend_replays_the_saved_reply_with_fresh_audio_and_no_model_call(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage) -> None:
    streamer = engine(Streamer())
    session_id = start_session(api, device)
    first = ws.connect(device)
    ws.turn(first, turn_message(session_id))
    again = ws.connect(device)  # the client reconnected and sent the same turn (same messageId)

    ws.turn(again, turn_message(session_id))
    ws.turn(again, turn_message(session_id))

    assert streamer.calls == 1 and len(usage.of("chat")) == 1
    replay = sockets.of(again)[: len(sockets.of(again)) // 2]
    assert types(replay)[:2] == ["accepted", "text"] and replay[1]["text"] == REPLY
    assert replay[-1]["type"] == "complete" and replay[-1]["replayed"] is True
    assert replay[-1]["turn"]["reply"] == REPLY and replay[-1]["turn"]["engine"] == "anthropic"
    assert len(audio_of(replay)) == 3  # replayed whole sentences (no first clause): each spoken and metered
    assert len(usage.of("tts")) == 4 + 3 + 3
    assert len(messages_of(api, device, session_id)) == 2  # saved once


def test_a_client_gone_mid_turn_gets_nothing_more_but_the_reply_is_saved_and_metered(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage,
        aws: dict[str, str]) -> None:
    streamer = engine(Streamer())
    session_id = start_session(api, device)
    connection_id = ws.connect(device)
    sockets.gone_after[connection_id] = 2  # accepted and one text frame, then 410 GoneException

    assert ws.turn(connection_id, turn_message(session_id)) == {"statusCode": 200}

    assert types(sockets.of(connection_id)) == ["accepted", "text"]
    assert [m["content"] for m in messages_of(api, device, session_id)][1] == REPLY  # completed and saved
    assert streamer.calls == 1 and len(usage.of("chat")) == 1
    assert len(usage.of("tts")) <= 1  # no sentence is spoken for no one (one may have been under way)
    item = boto3.resource("dynamodb").Table(aws["Table"]).get_item(
        Key={"PK": keys.connection_pk(connection_id), "SK": keys.CONNECTION_SK})
    assert "Item" not in item  # the gone connection is forgotten
    back = ws.connect(device)
    ws.turn(back, turn_message(session_id))
    assert sockets.of(back)[-1]["turn"]["replayed"] is True and streamer.calls == 1


def test_a_resend_while_the_first_invocation_still_answers_waits_and_replays_its_reply(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage,
        runner: FunctionRunner, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    streamer = engine(Streamer())
    session_id = start_session(api, device)
    first = ws.connect(device)
    ws.turn(first, turn_message(session_id))  # the reply is saved...
    table = boto3.resource("dynamodb").Table(aws["Table"])
    claim = {"PK": f"DEVICE#{device}", "SK": f"SESSION#{session_id}#TURNCLAIM#turn-0000-0001",
             "expiresAt": int(__import__("time").time()) + 30}
    table.put_item(Item=claim)  # ...and (as far as a resend can tell) its invocation is still running
    waited: list[float] = []

    def pause(seconds: float) -> None:  # the first invocation finishes while the resend waits
        waited.append(seconds)
        table.delete_item(Key={"PK": claim["PK"], "SK": claim["SK"]})

    monkeypatch.setattr(runner.module("WsTutorTurnFunction"), "PAUSE", pause)
    again = ws.connect(device)
    ws.turn(again, turn_message(session_id))

    assert waited and sockets.of(again)[-1]["replayed"] is True
    assert streamer.calls == 1 and len(usage.of("chat")) == 1
    assert "Item" not in table.get_item(Key={"PK": claim["PK"], "SK": claim["SK"]})  # released after the turn


# -- the same guarantees as POST /chat ----------------------------------------------------------------
def test_over_quota_is_refused_before_any_model_call_or_save(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage,
        aws: dict[str, str]) -> None:
    streamer = engine(Streamer())
    session_id = start_session(api, device)
    owner = f"DEVICE#{device}"
    table = boto3.resource("dynamodb").Table(aws["Table"])
    table.put_item(Item={"PK": owner, "SK": keys.QUOTA_SK, "monthlyTokens": 1000})
    table.put_item(Item={"PK": owner, "SK": keys.usage_month_sk(utcnow().strftime("%Y-%m")), "inputTokens": 900,
                         "outputTokens": 200, "totalTokens": 1100})
    connection_id = ws.connect(device)

    ws.turn(connection_id, turn_message(session_id))

    frames = sockets.of(connection_id)
    assert types(frames) == ["accepted", "error"] and frames[1]["error"]["code"] == "QUOTA_EXCEEDED"
    assert streamer.calls == 0 and usage.events == [] and messages_of(api, device, session_id) == []


def test_the_fallback_answers_when_the_primary_fails_before_the_first_token(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage) -> None:
    primary = Streamer(fail_before_text=True)
    secondary = Streamer(engine="bedrock")
    engine(FallbackProvider(primary, secondary, CircuitBreaker(), emit=lambda *_: None))  # type: ignore[arg-type]
    session_id = start_session(api, device)
    connection_id = ws.connect(device)

    ws.turn(connection_id, turn_message(session_id))

    frames = sockets.of(connection_id)
    complete = frames[-1]["turn"]
    assert (complete["engine"], complete["fallbackFrom"]) == ("bedrock", "anthropic")
    assert "".join(f["text"] for f in frames if f["type"] == "text").strip() == REPLY  # the text once, no restart
    assert primary.calls == 1 and secondary.calls == 1
    assert [e.engine for e in usage.of("chat")] == ["bedrock"]  # metered once, for who answered


def test_a_failure_after_the_first_token_is_an_error_and_the_message_stays_saved(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage) -> None:
    class Breaks(Streamer):
        def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
            self.calls += 1
            yield "That sounds "
            raise ProviderError("The engine dropped the stream.", engine="anthropic", retryable=False)

    engine(FallbackProvider(Breaks(), Streamer(engine="bedrock"), CircuitBreaker(), emit=lambda *_: None))  # type: ignore[arg-type]
    session_id = start_session(api, device)
    connection_id = ws.connect(device)
    ws.turn(connection_id, turn_message(session_id))
    frames = sockets.of(connection_id)
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "AI_UNAVAILABLE"
    assert "messageId" in frames[-1]["error"]["message"]
    assert [m["role"] for m in messages_of(api, device, session_id)] == ["user"]
    assert len(usage.of("chat")) == 1  # what the broken stream used is metered


@pytest.mark.parametrize(("message", "code"), [
    ("{not json", "MALFORMED_JSON"),
    ({"action": "tutorTurn", "sessionId": "01JZZZZZZZZZZZZZZZZZZZZZZZ", "text": "hi"}, "VALIDATION_ERROR"),
    ({"action": "tutorTurn", "sessionId": "01JZZZZZZZZZZZZZZZZZZZZZZZ", "messageId": "short", "text": "hi"},
     "VALIDATION_ERROR"),
    ({"action": "tutorTurn", "sessionId": "01JZZZZZZZZZZZZZZZZZZZZZZZ", "messageId": "turn-0000-0009", "text": ""},
     "VALIDATION_ERROR"),
])
def test_bad_messages_get_the_stable_error_body(ws: Ws, device: str, sockets: Sockets, message: Any,
                                               code: str) -> None:
    connection_id = ws.connect(device)
    ws.turn(connection_id, message)
    (error,) = sockets.of(connection_id)
    assert error["type"] == "error" and error["error"]["code"] == code and error["error"]["message"]


def test_a_session_of_another_owner_is_not_found(ws: Ws, api: ApiClient, device: str, sockets: Sockets,
                                                 engine: Any) -> None:
    streamer = engine(Streamer())
    session_id = start_session(api, "someone-else-0001")
    connection_id = ws.connect(device)
    ws.turn(connection_id, turn_message(session_id))
    frames = sockets.of(connection_id)
    assert types(frames) == ["accepted", "error"] and frames[1]["error"]["code"] == "NOT_FOUND"
    assert streamer.calls == 0


def test_an_unregistered_connection_is_refused(ws: Ws, sockets: Sockets) -> None:
    ws.turn("never-connected=", turn_message("01JZZZZZZZZZZZZZZZZZZZZZZZ"))
    (error,) = sockets.of("never-connected=")
    assert error["error"]["code"] == "UNAUTHORIZED"


def test_the_offline_engine_streams_a_whole_turn(ws: Ws, api: ApiClient, device: str, sockets: Sockets,
                                                 speech: None) -> None:
    session_id = start_session(api, device, accent="US", gender="female")
    connection_id = ws.connect(device)
    ws.turn(connection_id, turn_message(session_id))
    frames = sockets.of(connection_id)
    assert types(frames)[0] == "accepted" and types(frames)[-1] == "complete"
    assert frames[-1]["turn"]["engine"] == "offline" and audio_of(frames)
    assert {f["voice"] for f in frames if f["type"] == "audio"} == {"Joanna"}


# -- translation ----------------------------------------------------------------------------------------
def translation_on(api: ApiClient, device: str, on: bool = True) -> None:
    response = api.as_device(device).put("/settings", {"showTranslation": on, "nativeLanguage": "ko"})
    assert response.status == 200, response.body


def test_with_translation_on_the_reply_is_translated_after_the_audio_and_saved(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage) -> None:
    engine(Streamer())
    translation_on(api, device)
    session_id = start_session(api, device)
    connection_id = ws.connect(device)

    ws.turn(connection_id, turn_message(session_id))

    frames = sockets.of(connection_id)
    kinds = types(frames)
    assert kinds.index("translation") > max(i for i, k in enumerate(kinds) if k == "audio")
    assert kinds[-1] == "complete" and kinds[-2] == "translation"
    translation = frames[-2]
    assert (translation["language"], translation["available"], translation["text"]) == ("ko", True, KOREAN)
    turn = frames[-1]["turn"]
    assert turn["translation"]["text"] == KOREAN and turn["replyMessage"]["translation"] == KOREAN
    saved = messages_of(api, device, session_id)
    assert [m["translation"] for m in saved] == [None, KOREAN]  # GET /sessions/{id}
    assert len(usage.of("translation")) == 1 and len(usage.of("chat")) == 1  # metered like any model call
    # A replay sends the saved translation again, with no model call.
    first_turn = len(frames)
    ws.turn(connection_id, turn_message(session_id))
    replay = sockets.of(connection_id)[first_turn:]
    assert replay[-2]["text"] == KOREAN and replay[-1]["replayed"] is True
    assert len(usage.of("translation")) == 1 and len(usage.of("chat")) == 1


def test_with_translation_off_there_is_no_translation_frame_nor_call(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, engine: Any, usage: Usage) -> None:
    engine(Streamer())
    translation_on(api, device, on=False)
    session_id = start_session(api, device)
    connection_id = ws.connect(device)
    ws.turn(connection_id, turn_message(session_id))
    frames = sockets.of(connection_id)
    assert "translation" not in types(frames) and frames[-1]["turn"]["translation"] is None
    assert usage.of("translation") == [] and messages_of(api, device, session_id)[1]["translation"] is None


def test_offline_the_translation_frame_says_unavailable_and_nothing_is_invented(
        ws: Ws, api: ApiClient, device: str, sockets: Sockets, speech: None, usage: Usage) -> None:
    translation_on(api, device)
    session_id = start_session(api, device)
    connection_id = ws.connect(device)
    ws.turn(connection_id, turn_message(session_id))
    frames = sockets.of(connection_id)
    (translation,) = [f for f in frames if f["type"] == "translation"]
    assert translation["available"] is False and "offline" in translation["reason"] and "text" not in translation
    assert messages_of(api, device, session_id)[1]["translation"] is None
    assert usage.of("translation") == []


def test_post_chat_and_the_envelope_return_the_translation(api: ApiClient, device: str, engine: Any,
                                                          usage: Usage) -> None:
    engine(Streamer())
    translation_on(api, device)
    session_id = start_session(api, device)
    client = api.as_device(device)

    answer = client.post("/chat", {"message": "I went hiking.", "sessionId": session_id, "messageId": "chat-0000-0001"})
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["translation"] == {"language": "ko", "available": True, "text": KOREAN, "reason": None}
    assert body["replyMessage"]["translation"] == KOREAN

    detail = client.post("/chat", {"action": "get_session_detail", "sessionId": session_id})
    assert detail.status == 200, detail.body
    assert [m["translation"] for m in detail.json()["messages"]] == [None, KOREAN]

    seed_chat = client.post("/chat", {"action": "chat", "messages": [{"role": "user", "content": "Hello there."}]})
    assert seed_chat.status == 200, seed_chat.body
    assert seed_chat.json()["translation"] == KOREAN
    assert len(usage.of("translation")) == 2


def test_post_chat_without_translation_answers_null(api: ApiClient, device: str, engine: Any) -> None:
    engine(Streamer())
    session_id = start_session(api, device)
    body = api.as_device(device).post("/chat", {"message": "Hi.", "sessionId": session_id}).json()
    assert body["translation"] is None and body["replyMessage"]["translation"] is None


@pytest.mark.parametrize("language", ["korean", "KO", "k", "ko_KR", "x" * 40])
def test_a_native_language_that_is_not_a_language_tag_is_refused(api: ApiClient, device: str, language: str) -> None:
    response = api.as_device(device).put("/settings", {"nativeLanguage": language})
    assert response.status == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR"


# -- per-turn timings ---------------------------------------------------------------------------------
def test_each_turn_records_its_timings_with_the_engine(ws: Ws, api: ApiClient, device: str, sockets: Sockets,
                                                       speech: None, engine: Any, runner: FunctionRunner,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine(Streamer())
    recorded: list[tuple[str, float, str]] = []
    app = runner.module("WsTutorTurnFunction")
    build = app.voice_turn_from

    def recording(env: Any, store: Any) -> Any:
        turn = build(env, store)
        turn.emit = lambda name, ms, engine: recorded.append((name, ms, engine))
        return turn

    monkeypatch.setattr(app, "voice_turn_from", recording)
    session_id = start_session(api, device)
    ws.turn(ws.connect(device), turn_message(session_id))

    timings = {name: (ms, engine) for name, ms, engine in recorded}
    assert set(timings) == {"TimeToFirstToken", "TimeToFirstAudio", "TurnDuration"}
    assert {e for _, e in timings.values()} == {"anthropic"}
    assert 0 < timings["TimeToFirstToken"][0] < timings["TimeToFirstAudio"][0] <= timings["TurnDuration"][0]


def test_a_timing_is_one_emf_record_in_milliseconds_with_the_engine(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from parley.tutor.voice_turn import emit_timing

    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Parley")  # the template's Globals
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    emit_timing("TimeToFirstAudio", 812.34, "bedrock")
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": "TimeToFirstAudio", "Unit": "Milliseconds"}]
    assert "Engine" in directive["Dimensions"][0]
    assert line["Engine"] == "bedrock" and line["TimeToFirstAudio"] in (812.3, [812.3])
