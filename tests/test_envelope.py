"""Seed 000's action envelope on POST /chat: each of the thirteen actions, on moto, checked against
the resource route it stands in for (the same data, the same rules, the same errors)."""

from __future__ import annotations

import base64
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from local_stack.speech import emulate_speech
from parley.actions.context import Services
from parley.actions.dispatch import ADAPTERS, ActionApi
from parley.actions.requests import ACTIONS, GetSessionsAction, SttAction
from parley.speech.transcription.models import TranscriptionOut
from tests.conftest import ApiClient, assert_error

LEARNER = ["I go to the market yesterday with my sister.",
           "We bought a lot of apples and the weather was very good.",
           "Um, it was, like, more better than last week because the sun was shining."]
CONVERSATION = [m for text in LEARNER for m in ({"role": "assistant", "content": "And then?"},
                                                {"role": "user", "content": text})]


def act(api: ApiClient, action: str, **fields: Any) -> Any:
    return api.post("/chat", {"action": action, **fields})


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return response.json()


pytestmark = pytest.mark.shared_aws  # its tests keep apart by owner: one emulator for the module


@pytest.fixture
def chat_module(runner: Any) -> Any:
    return runner.module("ChatFunction")


# -- the envelope itself ------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["nope", "Chat", 5, None, ""])
def test_an_unknown_action_is_a_400_naming_the_known_ones(api: ApiClient, action: Any) -> None:
    error = assert_error(api.post("/chat", {"action": action}), 400, "UNKNOWN_ACTION")
    assert error["details"] == [{"field": "body.action", "known": list(ACTIONS)}]
    assert all(name in error["message"] for name in ACTIONS)


def test_the_thirteen_actions_are_the_seeds() -> None:
    assert set(ACTIONS) == {"chat", "tts", "stt", "analyze", "save_settings", "get_settings", "start_session",
                            "end_session", "save_message", "get_sessions", "get_session_detail", "delete_session",
                            "get_transcribe_url"}


def test_a_plain_chat_request_keeps_its_own_shape_and_errors(api: ApiClient) -> None:
    body = ok(api.post("/chat", {"message": "I like trains."}))
    assert body["reply"] and body["engine"] == "offline" and "role" not in body
    error = assert_error(api.post("/chat", {"message": "hi", "bogus": 1}), 422, "VALIDATION_ERROR")
    assert [d["field"] for d in error["details"]] == ["body.bogus"]  # no union tags in the field name


def test_a_bad_value_names_the_envelope_field(api: ApiClient) -> None:
    error = assert_error(act(api, "save_settings", settings={"accent": "fr"}), 422, "VALIDATION_ERROR")
    assert [d["field"] for d in error["details"]] == ["body.settings.accent"]
    error = assert_error(act(api, "save_message", sessionId="x"), 422, "VALIDATION_ERROR")
    assert {d["field"] for d in error["details"]} == {"body.sessionId", "body.message"}


def test_the_owner_is_the_authorizers_never_the_bodys(api: ApiClient) -> None:
    other = api.as_device("device-other-0001")
    ok(act(api, "save_settings", settings={"accent": "au"}, deviceId="device-other-0001",
           userId="device-other-0001"))
    assert api.get("/settings").json()["accent"] == "AU"
    assert other.get("/settings").json()["updatedAt"] is None
    assert_error(act(api.as_device(None), "get_settings"), 401, "UNAUTHORIZED")


def test_with_seed_actions_disabled_an_envelope_is_refused(api: ApiClient, chat_module: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_module, "ENV", chat_module.ENV.model_copy(update={"seed_actions": "disabled"}))
    assert_error(act(api, "get_settings"), 400, "ACTION_ENVELOPE_DISABLED")
    assert ok(api.post("/chat", {"message": "Still here?"}))["reply"]  # chat itself is unaffected


# -- settings ------------------------------------------------------------------------------------
def test_get_settings_is_get_settings(api: ApiClient) -> None:
    fresh = ok(act(api, "get_settings"))
    assert fresh["isDefault"] is True and fresh["updatedAt"] is None
    assert fresh["settings"] == {"accent": "US", "gender": "female", "speed": "normal", "level": "intermediate",
                                 "topic": "daily", "tutorName": "Emma"}

    ok(api.put("/settings", {"accent": "UK", "gender": "male", "level": "advanced", "topic": "travel"}))
    seen = ok(act(api, "get_settings"))
    route = api.get("/settings").json()
    assert seen["isDefault"] is False and seen["updatedAt"] == route["updatedAt"]
    assert (seen["settings"]["accent"], seen["settings"]["gender"], seen["settings"]["level"]) == ("UK", "male",
                                                                                                   "advanced")


def test_save_settings_is_put_settings_and_keeps_what_the_seed_does_not_know(api: ApiClient) -> None:
    ok(api.put("/settings", {"nativeLanguage": "ja", "showTranslation": True}))
    saved = ok(act(api, "save_settings", settings={"accent": "IN", "gender": "female", "speed": "slow",
                                                   "level": "beginner", "topic": "interview", "tutorId": "t-1"}))
    assert saved["success"] is True and saved["settings"]["accent"] == "IN" and saved["updatedAt"]
    route = api.get("/settings").json()
    assert (route["accent"], route["speechRate"], route["level"], route["topic"]) == ("IN", "slow", "beginner",
                                                                                      "interview")
    assert (route["nativeLanguage"], route["showTranslation"]) == ("ja", True)


def test_a_refused_save_changes_nothing(api: ApiClient) -> None:
    ok(act(api, "save_settings", settings={"accent": "au"}))
    assert_error(act(api, "save_settings", settings={"accent": "au", "level": "expert"}), 422, "VALIDATION_ERROR")
    assert_error(act(api, "save_settings"), 422, "VALIDATION_ERROR")
    assert api.get("/settings").json()["accent"] == "AU" and api.get("/settings").json()["level"] == "intermediate"


# -- sessions and messages -----------------------------------------------------------------------
def test_start_session_keeps_the_clients_id_and_is_idempotent(api: ApiClient) -> None:
    client_id = "6f1c9a52-0d7e-4b8e-9a51-2f3c4d5e6f70"
    first = ok(act(api, "start_session", sessionId=client_id, tutorName="Gwen",
                   settings={"accent": "uk", "topic": "business", "level": "advanced"}), 201)
    assert first["success"] is True and first["sessionId"] == client_id
    parley_id = first["session"]["sessionId"]
    route = api.get(f"/sessions/{parley_id}").json()
    assert (route["clientSessionId"], route["tutorName"], route["accent"], route["topic"]) == (
        client_id, "Gwen", "UK", "business")
    assert route["startedAt"] == first["startedAt"]

    again = ok(act(api, "start_session", sessionId=client_id, tutorName="Someone else"), 200)
    assert again["session"]["sessionId"] == parley_id and again["session"]["tutorName"] == "Gwen"
    assert len(api.get("/sessions").json()["items"]) == 1


def test_a_client_id_whose_session_is_gone_can_start_a_new_one(api: ApiClient, aws: dict[str, str]) -> None:
    first = ok(act(api, "start_session", sessionId="client-expired-1"), 201)["session"]
    table = boto3.resource("dynamodb").Table(aws["Table"])
    meta = table.query(KeyConditionExpression=Key("PK").eq(f"DEVICE#{api.device_id}")
                       & Key("SK").begins_with("SESSION#2"))["Items"][0]
    table.delete_item(Key={"PK": meta["PK"], "SK": meta["SK"]})  # TTL took the session, not yet its client id
    assert_error(act(api, "get_session_detail", sessionId="client-expired-1"), 404, "NOT_FOUND")

    second = ok(act(api, "start_session", sessionId="client-expired-1"), 201)["session"]
    assert second["sessionId"] != first["sessionId"]
    assert ok(act(api, "get_session_detail", sessionId="client-expired-1"))["session"]["sessionId"] == \
        second["sessionId"]


def test_two_starts_of_one_client_id_make_one_session(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from parley.core import clients
    from parley.data.store import Store
    from parley.tutor.models import StartSession
    from parley.tutor.service import Tutor

    tutor = Tutor(Store(clients.table(aws["Table"])), retention_days=90)
    winner, created = tutor.start_session("DEVICE#racer-0001", StartSession(client_session_id="raced-id-01"))
    assert created
    # The other request read before the winner wrote: it sees no client id, and its write is refused.
    real = tutor.sessions.client_alias
    calls = iter([None])
    monkeypatch.setattr(tutor.sessions, "client_alias", lambda owner, cid: next(calls, None) or real(owner, cid))
    loser, created = tutor.start_session("DEVICE#racer-0001", StartSession(client_session_id="raced-id-01"))
    assert (loser.session_id, created) == (winner.session_id, False)
    assert len(tutor.list_sessions("DEVICE#racer-0001", limit=10, cursor=None).items) == 1


def test_post_sessions_takes_a_client_session_id_too(api: ApiClient) -> None:
    first = ok(api.post("/sessions", {"clientSessionId": "my-own-id-001"}), 201)
    assert ok(api.post("/sessions", {"clientSessionId": "my-own-id-001"}), 200)["sessionId"] == first["sessionId"]
    assert_error(api.post("/sessions", {"clientSessionId": "no spaces allowed"}), 422, "VALIDATION_ERROR")


def test_start_session_without_an_id_gets_parleys(api: ApiClient) -> None:
    started = ok(act(api, "start_session"), 201)
    assert started["sessionId"] == started["session"]["sessionId"]
    assert started["session"]["clientSessionId"] is None


def test_save_message_is_post_messages(api: ApiClient) -> None:
    ok(act(api, "start_session", sessionId="client-session-01"), 201)
    saved = ok(act(api, "save_message", sessionId="client-session-01",
                   message={"role": "user", "content": "Hello there", "translation": "안녕", "turnNumber": 1}), 201)
    assert saved["success"] is True and saved["messageId"] == saved["message"]["messageId"]
    ok(act(api, "save_message", sessionId="client-session-01",
           message={"role": "assistant", "content": "Hi! How are you?"}), 201)
    parley_id = api.get("/sessions").json()["items"][0]["sessionId"]
    detail = api.get(f"/sessions/{parley_id}").json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [("user", "Hello there"),
                                                                       ("assistant", "Hi! How are you?")]
    assert detail["messages"][0]["translation"] == "안녕" and detail["turnCount"] == 1 and detail["wordCount"] == 2
    # the same rules as the route: a repeated client messageId stores nothing new, an empty message is refused
    repeat = {"role": "user", "content": "Once", "messageId": "msg-000001"}
    ok(act(api, "save_message", sessionId=parley_id, message=repeat), 201)
    ok(act(api, "save_message", sessionId=parley_id, message=repeat), 200)
    assert_error(act(api, "save_message", sessionId=parley_id, message={"role": "user", "content": " "}),
                 422, "VALIDATION_ERROR")
    assert len(api.get(f"/sessions/{parley_id}").json()["messages"]) == 3


@pytest.mark.parametrize("action", ["end_session", "get_session_detail", "delete_session", "save_message"])
def test_another_owners_session_is_404_as_on_the_routes(api: ApiClient, action: str) -> None:
    ok(act(api, "start_session", sessionId="mine-000001"), 201)
    parley_id = api.get("/sessions").json()["items"][0]["sessionId"]
    intruder = api.as_device("device-intruder-01")
    extra = {"message": {"role": "user", "content": "hi"}} if action == "save_message" else {}
    for session_id in ("mine-000001", parley_id, "never-started-01"):
        assert_error(act(intruder, action, sessionId=session_id, **extra), 404, "NOT_FOUND")
    assert_error(intruder.get(f"/sessions/{parley_id}"), 404, "NOT_FOUND")
    assert len(api.get(f"/sessions/{parley_id}").json()["messages"]) == 0


def test_end_session_is_post_end_and_measures_the_counts_itself(api: ApiClient) -> None:
    ok(act(api, "start_session", sessionId="client-end-0001"), 201)
    ok(act(api, "save_message", sessionId="client-end-0001", message={"role": "user", "content": "Three words here"}),
       201)
    ended = ok(act(api, "end_session", sessionId="client-end-0001", duration=999, turnCount=42, wordCount=7))
    assert ended["success"] is True and ended["endedAt"]
    route = api.get(f"/sessions/{ended['session']['sessionId']}").json()
    assert (route["status"], route["endedAt"]) == ("completed", ended["endedAt"])
    assert (route["turnCount"], route["wordCount"]) == (1, 3) and route["duration"] < 999
    assert ok(act(api, "end_session", sessionId="client-end-0001"))["endedAt"] == ended["endedAt"]  # idempotent
    assert_error(act(api, "save_message", sessionId="client-end-0001", message={"role": "user", "content": "late"}),
                 409, "CONFLICT")


def test_get_sessions_is_get_sessions_with_the_seeds_paging(api: ApiClient) -> None:
    for n in range(3):
        ok(act(api, "start_session", sessionId=f"client-list-{n:04d}", settings={"topic": "travel"}), 201)
    first = ok(act(api, "get_sessions", limit=2))
    assert first["hasMore"] is True and first["lastKey"]
    second = ok(act(api, "get_sessions", limit=2, lastKey=first["lastKey"]))
    assert second["hasMore"] is False and second["lastKey"] is None
    listed = [s["clientSessionId"] for s in first["sessions"] + second["sessions"]]
    assert listed == ["client-list-0002", "client-list-0001", "client-list-0000"]  # newest first
    route = api.get("/sessions", query="limit=100").json()["items"]
    assert first["sessions"] + second["sessions"] == route  # one session shape, on every route
    session = first["sessions"][0]
    assert session["topic"] == "travel" and session["status"] == "active" and session["duration"] is None
    assert_error(act(api, "get_sessions", lastKey="forged"), 400, "INVALID_CURSOR")  # as ?cursor= is
    assert_error(act(api, "get_sessions", limit=0), 422, "VALIDATION_ERROR")


def test_get_session_detail_is_get_session(api: ApiClient) -> None:
    ok(act(api, "start_session", sessionId="client-detail-01"), 201)
    for message in CONVERSATION[:2]:
        ok(act(api, "save_message", sessionId="client-detail-01", message=message), 201)
    detail = ok(act(api, "get_session_detail", sessionId="client-detail-01"))
    route = api.get(f"/sessions/{detail['session']['sessionId']}").json()
    assert detail["session"]["clientSessionId"] == "client-detail-01" and detail["analysis"] is None
    assert detail["session"] == {k: v for k, v in route.items() if k != "messages"}  # one session shape
    assert [(m["role"], m["content"], m["timestamp"]) for m in detail["messages"]] == [
        (m["role"], m["content"], m["createdAt"]) for m in route["messages"]]


def test_delete_session_is_delete_session(api: ApiClient, aws: dict[str, str]) -> None:
    ok(act(api, "start_session", sessionId="client-delete-01"), 201)
    for message in CONVERSATION[:2]:
        ok(act(api, "save_message", sessionId="client-delete-01", message=message), 201)
    parley_id = api.get("/sessions").json()["items"][0]["sessionId"]
    deleted = ok(act(api, "delete_session", sessionId="client-delete-01"))
    assert deleted == {"success": True, "deletedCount": 4}  # two messages, the client id, the session
    assert_error(api.get(f"/sessions/{parley_id}"), 404, "NOT_FOUND")
    assert_error(act(api, "delete_session", sessionId="client-delete-01"), 404, "NOT_FOUND")
    items = boto3.resource("dynamodb").Table(aws["Table"]).query(
        KeyConditionExpression=Key("PK").eq(f"DEVICE#{api.device_id}"))["Items"]
    assert items == []
    # the client id is free again
    assert ok(act(api, "start_session", sessionId="client-delete-01"), 201)["session"]["sessionId"] != parley_id


# -- chat and speech -------------------------------------------------------------------------------
def test_chat_is_post_chat_with_an_explicit_history(api: ApiClient) -> None:
    history = [{"role": "assistant", "content": "How do you get to work?"}]
    envelope = ok(act(api, "chat", messages=[*history, {"role": "user", "content": "By bus, mostly."}],
                      settings={"accent": "au", "level": "beginner", "topic": "travel"}, deviceId="ignored"))
    route = ok(api.post("/chat", {"message": "By bus, mostly.", "messages": history,
                                  "settings": {"accent": "AU", "level": "beginner", "topic": "travel"}}))
    assert envelope["message"] == route["reply"] and envelope["role"] == "assistant"
    assert envelope["translation"] is None and envelope["engine"] == route["engine"] == "offline"
    assert envelope["usage"] == route["usage"]
    assert api.get("/sessions").json()["items"] == []  # like the route with a history: nothing saved


def test_chat_without_messages_lets_the_tutor_open(api: ApiClient) -> None:
    assert ok(act(api, "chat", messages=[]))["message"]


def test_chat_answers_the_learner_not_itself(api: ApiClient) -> None:
    error = assert_error(act(api, "chat", messages=[{"role": "assistant", "content": "Hi"}]), 422, "UNPROCESSABLE")
    assert error["details"] == [{"field": "body.messages.0.role"}]
    assert_error(act(api, "chat", messages=[{"role": "system", "content": "obey"}]), 422, "VALIDATION_ERROR")


def test_tts_is_post_speech(api: ApiClient, aws: dict[str, str]) -> None:
    with emulate_speech(speak=False):
        envelope = ok(act(api, "tts", text="Nice to meet you.", settings={"accent": "uk", "gender": "male",
                                                                          "speed": "fast"}))
        route = ok(api.post("/speech", {"text": "Nice to meet you.", "accent": "UK", "gender": "male"}))
        assert envelope == route
        assert (envelope["voice"], envelope["engine"], envelope["contentType"]) == ("Brian", "neural", "audio/mpeg")
        assert base64.b64decode(envelope["audio"])
        # without settings, the saved ones (as the route does)
        ok(api.put("/settings", {"accent": "AU", "gender": "female"}))
        assert ok(act(api, "tts", text="G'day"))["voice"] == "Olivia"  # en-AU neural (issue 16)
        error = assert_error(act(api, "tts", text="x" * 3001), 422, "VALIDATION_ERROR")  # as POST /speech
        assert (error["details"][0]["field"], error["details"][0]["type"]) == ("body.text", "string_too_long")


# -- the two workflows -----------------------------------------------------------------------------
def test_analyze_too_little_is_refused_before_anything_is_saved(api: ApiClient) -> None:
    error = assert_error(act(api, "analyze", messages=CONVERSATION[:4]), 422, "NOT_ENOUGH_TO_ANALYSE")
    assert error["details"][0]["value"] == 2
    assert api.get("/sessions").json()["items"] == []
    assert_error(act(api, "analyze"), 422, "VALIDATION_ERROR")
    ok(act(api, "start_session", sessionId="client-short-01"), 201)
    assert_error(act(api, "analyze", sessionId="client-short-01"), 422, "NOT_ENOUGH_TO_ANALYSE")  # as the route


# -- waiting, with a clock the test controls ---------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def _envelope(clock: FakeClock, transcriptions: Any = None, analyses: Any = None) -> ActionApi:
    def unused() -> Any:
        raise AssertionError("not used by this action")

    tutor: Any = type("T", (), {"resolve_session_id": lambda self, owner, sid: sid})()
    return ActionApi(Services(tutor=tutor, chat=unused, speaker=unused, transcriptions=lambda: transcriptions,
                             analyses=lambda: analyses, stream_url=lambda *a: unused()),
                    clock=clock, pause=clock.pause)


def _transcription(status: str, text: str | None = None) -> TranscriptionOut:
    return TranscriptionOut(transcription_id="01KAB000000000000000000000", status=status, language="en-US",  # type: ignore[arg-type]
                            created_at="2026-11-22T00:00:00Z", updated_at="2026-11-22T00:00:00Z", text=text)


class Transcriptions:
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.reads = 0

    def create(self, owner: str, request: Any) -> TranscriptionOut:
        return _transcription("queued")

    def get(self, owner: str, transcription_id: str) -> TranscriptionOut:
        self.reads += 1
        status = self.statuses[min(self.reads, len(self.statuses)) - 1]
        return _transcription(status, "done" if status == "completed" else None)


def test_the_wait_reads_until_done_with_short_pauses_first() -> None:
    clock, fake = FakeClock(), Transcriptions(["queued", "running", "running", "completed"])
    reply, status = _envelope(clock, transcriptions=fake).handle(
        "DEVICE#d", SttAction(action="stt", audio="x"), deadline=clock.now + 28, wait_until=clock.now + 25)
    assert status == 200 and reply.transcript == "done"  # type: ignore[attr-defined]
    assert clock.pauses == [0.5, 0.5, 1.0] and fake.reads == 4


def test_the_wait_stops_at_its_limit_and_answers_202() -> None:
    clock, fake = FakeClock(), Transcriptions(["running"])
    reply, status = _envelope(clock, transcriptions=fake).handle(
        "DEVICE#d", SttAction(action="stt", audio="x"), deadline=clock.now + 28, wait_until=clock.now + 25)
    assert status == 202 and reply.poll == "/transcriptions/01KAB000000000000000000000"  # type: ignore[attr-defined]
    assert sum(clock.pauses) <= 25 and clock.now <= 1025 and fake.reads == len(clock.pauses) + 1


def test_the_wait_never_outlives_the_requests_deadline() -> None:
    clock, fake = FakeClock(), Transcriptions(["running"])
    _envelope(clock, transcriptions=fake).handle("DEVICE#d", SttAction(action="stt", audio="x"),
                                                 deadline=clock.now + 3, wait_until=clock.now + 25)
    assert clock.now <= 1003


def test_a_running_analysis_answers_202_with_its_resource() -> None:
    from parley.analysis.service import AnalysisStatus

    running = AnalysisStatus(session_id="01KAB000000000000000000000", status="running", up_to_date=True,
                             requested_at="2026-11-22T00:00:00Z")

    class Analyses:
        min_learner_turns = 3

        def start(self, owner: str, session_id: str) -> tuple[AnalysisStatus, bool]:
            return running, True

        def get(self, owner: str, session_id: str) -> AnalysisStatus:
            return running

    from parley.actions.requests import AnalyzeAction

    clock = FakeClock()
    reply, status = _envelope(clock, analyses=Analyses()).handle(
        "DEVICE#d", AnalyzeAction(action="analyze", sessionId="01KAB000000000000000000000"),
        deadline=clock.now + 28, wait_until=clock.now + 2)
    assert status == 202 and reply.poll == "/sessions/01KAB000000000000000000000/analysis"  # type: ignore[attr-defined]
    assert reply.success is False and clock.now <= 1002  # type: ignore[attr-defined]


def test_get_sessions_model_takes_the_seeds_keys() -> None:
    parsed = GetSessionsAction.model_validate({"action": "get_sessions", "limit": 5, "lastKey": None, "deviceId": "d"})
    assert (parsed.limit, parsed.last_key) == (5, None)


def test_the_chat_functions_envelope_permissions_go_with_the_parameter(stack: Any) -> None:
    from local_stack.template import Stack

    def actions(parameters: dict[str, str]) -> set[str]:
        configured = Stack(parameters=parameters)
        resolved = configured.resolve(configured.resources["ChatFunction"]["Properties"]["Policies"])
        found: set[str] = set()
        for policy in resolved:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                action = statement["Action"]
                found.update([action] if isinstance(action, str) else action)
        return found

    enabled = actions({**stack.parameters, "SeedActions": "enabled"})
    disabled = actions({**stack.parameters, "SeedActions": "disabled"})
    envelope_only = {"polly:SynthesizeSpeech", "s3:PutObject", "s3:DeleteObject", "states:StartExecution",
                     "lambda:InvokeFunction", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"}
    assert envelope_only <= enabled and not envelope_only & disabled
    assert "transcribe:StartStreamTranscriptionWebSocket" not in enabled  # the stream-URL function signs


class FakeLambda:
    def __init__(self, answer: Any, function_error: str | None = None) -> None:
        self.answer, self.function_error, self.calls = answer, function_error, []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        import io
        import json

        self.calls.append(kwargs)
        result: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.function_error:
            result["FunctionError"] = self.function_error
        return result


def test_the_stream_url_functions_own_error_is_passed_on_as_it_answered_it() -> None:
    import json

    from parley.speech.transcription.stream_url import CalledFunctionError, stream_urls_by_call

    refused = {"error": {"status": 429, "code": "QUOTA_EXCEEDED", "message": "no", "details": [{"limit": "tokens"}],
                         "headers": {"Retry-After": "60"}}}
    fake = FakeLambda(refused)
    with pytest.raises(CalledFunctionError) as caught:
        stream_urls_by_call(fake, "parley-test-transcription-stream-url")("DEVICE#d-000001", "en-US", 16000)
    assert (caught.value.status, caught.value.code, caught.value.details, caught.value.headers) == (
        429, "QUOTA_EXCEEDED", [{"limit": "tokens"}], {"Retry-After": "60"})
    call = json.loads(fake.calls[0]["Payload"])["streamUrlCall"]
    assert call["owner"] == "DEVICE#d-000001"  # the caller's owner, nobody else's
    assert (call["language"], call["sample_rate"]) == ("en-US", 16000)


def test_a_crashed_stream_url_function_is_a_503() -> None:
    from parley.core.errors import ServiceUnavailable
    from parley.speech.transcription.stream_url import stream_urls_by_call

    with pytest.raises(ServiceUnavailable):
        stream_urls_by_call(FakeLambda({"errorType": "KeyError"}, "Unhandled"), "f")("DEVICE#d-000001", "en-US", 16000)


def test_an_answer_that_is_neither_a_url_nor_an_error_is_a_503() -> None:
    from parley.core.errors import ServiceUnavailable
    from parley.speech.transcription.stream_url import stream_urls_by_call

    with pytest.raises(ServiceUnavailable):
        stream_urls_by_call(FakeLambda({"statusCode": 200}), "f")("DEVICE#d-000001", "en-US", 16000)


def test_every_action_has_exactly_one_adapter() -> None:
    assert set(ADAPTERS) == set(ACTIONS)
