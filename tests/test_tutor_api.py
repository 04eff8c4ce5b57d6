"""The tutor's data plane through the API: settings, sessions, messages (seed 000)."""

from __future__ import annotations

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from tests.conftest import ApiClient, assert_error


def start(api: ApiClient, **body: str) -> dict:
    response = api.post("/sessions", body)
    assert response.status == 201, response.body
    return response.json()


def say(api: ApiClient, session_id: str, content: str, role: str = "user", **extra) -> dict:
    response = api.post(f"/sessions/{session_id}/messages", {"role": role, "content": content, **extra})
    assert response.status in (200, 201), response.body
    return response.json()


# -- settings -----------------------------------------------------------------------------------
def test_settings_default_then_saved_then_read_back(api: ApiClient) -> None:
    first = api.get("/settings")
    assert first.status == 200
    assert first.json()["accent"] == "US" and first.json()["updatedAt"] is None

    saved = api.put("/settings", {"accent": "UK", "gender": "male", "level": "advanced", "topic": "business",
                                  "tutorName": "Oliver"})
    assert saved.status == 200, saved.body
    assert saved.json()["updatedAt"]

    again = api.get("/settings").json()
    assert (again["accent"], again["gender"], again["level"], again["topic"], again["tutorName"]) == (
        "UK", "male", "advanced", "business", "Oliver")


@pytest.mark.parametrize(("body", "field"), [
    ({"accent": "FR"}, "body.accent"),
    ({"level": "expert"}, "body.level"),
    ({"topic": "cooking"}, "body.topic"),
    ({"gender": "x"}, "body.gender"),
    ({"tutorName": ""}, "body.tutorName"),
    ({"unknownField": 1}, "body.unknownField"),
])
def test_settings_refuses_bad_values_and_keeps_what_was_saved(api: ApiClient, body: dict, field: str) -> None:
    api.put("/settings", {"accent": "AU"})
    error = assert_error(api.put("/settings", body), 422, "VALIDATION_ERROR")
    assert any(d["field"] == field for d in error["details"]), error
    assert api.get("/settings").json()["accent"] == "AU"


def test_malformed_json_is_a_400(api: ApiClient) -> None:
    assert_error(api.put("/settings", body="{not json"), 400, "MALFORMED_JSON")


def test_oversize_body_is_refused(api: ApiClient) -> None:
    assert_error(api.put("/settings", body='{"tutorName": "' + "x" * 70_000 + '"}'), 413, "PAYLOAD_TOO_LARGE")


def test_unknown_route_is_404_with_the_error_body(api: ApiClient) -> None:
    response = api.get("/nothing-here")
    assert response.status == 404
    assert response.json()["error"]["code"]


# -- identity -----------------------------------------------------------------------------------
@pytest.mark.parametrize("device_id", [None, "", "short", "has spaces in it", "x" * 65, "semi;colon-id"])
def test_requests_without_a_valid_device_id_are_401(api: ApiClient, device_id: str | None) -> None:
    assert_error(api.as_device(device_id).get("/settings"), 401, "UNAUTHORIZED")


def test_owner_comes_from_the_authorizer_not_the_body(api: ApiClient) -> None:
    response = api.post("/sessions", {"owner": "DEVICE#someone-else"})
    assert_error(response, 422, "VALIDATION_ERROR")


def test_another_owners_session_is_exactly_like_a_missing_one(api: ApiClient) -> None:
    mine = start(api)
    say(api, mine["sessionId"], "Hello there")
    other = api.as_device("another-device-1234")
    missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for path in (f"/sessions/{mine['sessionId']}", f"/sessions/{missing}"):
        assert_error(other.get(path), 404, "NOT_FOUND")
        assert_error(other.post(f"{path}/end"), 404, "NOT_FOUND")
        assert_error(other.post(f"{path}/messages", {"role": "user", "content": "hi"}), 404, "NOT_FOUND")
        assert_error(other.delete(path), 404, "NOT_FOUND")
    assert other.get("/sessions").json()["items"] == []
    detail = api.get(f"/sessions/{mine['sessionId']}").json()
    assert detail["status"] == "active" and len(detail["messages"]) == 1


# -- sessions -----------------------------------------------------------------------------------
def test_start_session_takes_defaults_from_saved_settings(api: ApiClient) -> None:
    api.put("/settings", {"accent": "IN", "level": "beginner", "topic": "travel", "tutorName": "Priya"})
    session = start(api, topic="interview")
    assert session["status"] == "active"
    assert (session["accent"], session["level"], session["topic"], session["tutorName"]) == (
        "IN", "beginner", "interview", "Priya")
    assert session["turnCount"] == 0 and session["wordCount"] == 0


def test_session_items_follow_the_seed_layout(api: ApiClient, aws: dict[str, str]) -> None:
    session = start(api)
    say(api, session["sessionId"], "I like tea")
    table = boto3.resource("dynamodb").Table(aws["Table"])
    items = table.query(KeyConditionExpression=Key("PK").eq(f"DEVICE#{api.device_id}"))["Items"]
    by_type = {i["type"]: i for i in items}
    meta, message = by_type["SESSION_META"], by_type["MESSAGE"]
    assert meta["SK"] == f"SESSION#{session['startedAt']}#{session['sessionId']}#META"
    assert (meta["GSI1PK"], meta["GSI1SK"]) == (f"SESSION#{session['sessionId']}", "META")
    assert message["SK"] == f"SESSION#{session['sessionId']}#MSG#{message['createdAt']}"
    assert message["GSI1SK"] == f"MSG#{message['createdAt']}"
    assert int(message["expiresAt"]) > int(meta["turnCount"])  # TTL set (epoch seconds)


def test_messages_come_back_in_order_with_counts(api: ApiClient) -> None:
    session = start(api)
    sid = session["sessionId"]
    say(api, sid, "Hi! What did you do today?", role="assistant")
    say(api, sid, "I went to the market")
    say(api, sid, "Nice. What did you buy?", role="assistant", translation="좋아요. 뭘 샀어요?")
    say(api, sid, "Apples and bread, it's cheap")
    detail = api.get(f"/sessions/{sid}").json()
    assert [m["role"] for m in detail["messages"]] == ["assistant", "user", "assistant", "user"]
    assert [m["turnNumber"] for m in detail["messages"]] == [0, 1, 1, 2]
    assert detail["messages"][2]["translation"] == "좋아요. 뭘 샀어요?"
    assert detail["turnCount"] == 2
    assert detail["wordCount"] == 5 + 5  # learner words only; "it's" is one word
    created = [m["createdAt"] for m in detail["messages"]]
    assert created == sorted(created) and len(set(created)) == 4


def test_end_session_records_duration_and_is_idempotent(api: ApiClient) -> None:
    sid = start(api)["sessionId"]
    say(api, sid, "one two three")
    ended = api.post(f"/sessions/{sid}/end")
    assert ended.status == 200
    body = ended.json()
    assert body["status"] == "completed" and body["endedAt"] and body["duration"] >= 0
    assert body["turnCount"] == 1 and body["wordCount"] == 3
    again = api.post(f"/sessions/{sid}/end").json()
    assert again["endedAt"] == body["endedAt"]
    assert_error(api.post(f"/sessions/{sid}/messages", {"role": "user", "content": "late"}), 409, "CONFLICT")


def test_list_sessions_newest_first_across_pages(api: ApiClient) -> None:
    ids = [start(api)["sessionId"] for _ in range(7)]
    for sid in ids:
        say(api, sid, "filler message so messages share the partition")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get("/sessions", query=query).json()
        pages += 1
        seen += [s["sessionId"] for s in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc"])
def test_list_sessions_refuses_bad_limits(api: ApiClient, query: str) -> None:
    assert_error(api.get("/sessions", query=query), 422, "VALIDATION_ERROR")


def test_a_cursor_cannot_be_forged_to_read_another_owner(api: ApiClient) -> None:
    import base64
    import json

    forged = base64.urlsafe_b64encode(json.dumps({"PK": "DEVICE#victim-device", "SK": "SESSION#9"}).encode())
    assert_error(api.get("/sessions", query=f"cursor={forged.decode()}"), 400, "INVALID_CURSOR")
    assert_error(api.get("/sessions", query="cursor=%%%garbage"), 400, "INVALID_CURSOR")


def test_delete_session_with_more_than_25_messages_removes_everything(api: ApiClient, aws: dict[str, str]) -> None:
    keep = start(api)["sessionId"]
    say(api, keep, "this one stays")
    sid = start(api)["sessionId"]
    for n in range(60):
        say(api, sid, f"message number {n}", message_id=f"client-msg-{n:04d}")
    assert api.delete(f"/sessions/{sid}").status == 204
    table = boto3.resource("dynamodb").Table(aws["Table"])
    left = table.query(KeyConditionExpression=Key("PK").eq(f"DEVICE#{api.device_id}"))["Items"]
    assert {i["type"] for i in left} == {"SESSION_META", "MESSAGE"}
    assert all(keep in i["SK"] for i in left)
    assert_error(api.get(f"/sessions/{sid}"), 404, "NOT_FOUND")
    assert_error(api.delete(f"/sessions/{sid}"), 404, "NOT_FOUND")  # nothing left; retrying is harmless


# -- messages -----------------------------------------------------------------------------------
def test_saving_twice_with_the_same_message_id_saves_once(api: ApiClient) -> None:
    sid = start(api)["sessionId"]
    body = {"role": "user", "content": "Only once please", "messageId": "retry-key-0001"}
    first = api.post(f"/sessions/{sid}/messages", body)
    second = api.post(f"/sessions/{sid}/messages", body)
    assert (first.status, second.status) == (201, 200)
    assert first.json() == second.json()
    detail = api.get(f"/sessions/{sid}").json()
    assert len(detail["messages"]) == 1 and detail["turnCount"] == 1 and detail["wordCount"] == 3


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"role": "system", "content": "x"}, 422, "VALIDATION_ERROR"),
    ({"role": "user", "content": ""}, 422, "VALIDATION_ERROR"),
    ({"role": "user", "content": "   "}, 422, "VALIDATION_ERROR"),
    ({"role": "user", "content": "x" * 4001}, 422, "VALIDATION_ERROR"),
    ({"role": "user", "content": "ok", "messageId": "bad id!"}, 422, "VALIDATION_ERROR"),
    ({"role": "user", "content": "ok", "turnNumber": -1}, 422, "VALIDATION_ERROR"),
])
def test_bad_messages_are_refused_and_nothing_is_stored(api: ApiClient, body: dict, status: int, code: str) -> None:
    sid = start(api)["sessionId"]
    assert_error(api.post(f"/sessions/{sid}/messages", body), status, code)
    assert api.get(f"/sessions/{sid}").json()["messages"] == []


def test_cors_preflight_and_origin_come_from_the_template(api: ApiClient) -> None:
    preflight = api.request("OPTIONS", "/sessions")
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    response = api.get("/settings")
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


@pytest.mark.parametrize("content_type", ["multipart/form-data", "text/plain", "application/xml",
                                          "application/merge-patch+json"])
def test_a_body_that_is_not_json_is_415(api: ApiClient, content_type: str) -> None:
    response = api.request("PUT", "/settings", body='{"accent": "UK"}', headers={"Content-Type": content_type})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert api.get("/settings").json()["accent"] == "US"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_json_media_types_are_accepted(api: ApiClient, content_type: str) -> None:
    response = api.request("PUT", "/settings", body='{"accent": "UK"}', headers={"Content-Type": content_type})
    assert response.status == 200, response.body
