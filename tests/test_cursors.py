"""Pagination cursors: bound to the listing (and filters) that made them and checked in full before
DynamoDB sees them (400 INVALID_CURSOR); the last page — also an exactly full one — has no cursor."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from parley.data import keys
from tests.conftest import ApiClient, assert_error

pytestmark = pytest.mark.shared_aws  # its tests keep apart by owner: one emulator for the module


def decoded(cursor: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))  # type: ignore[no-any-return]


def encoded(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def sessions(api: ApiClient, count: int) -> list[str]:
    return [api.post("/sessions", {}).json()["sessionId"] for _ in range(count)]


def conversations(api: ApiClient, count: int) -> None:
    for n in range(count):
        assert api.post("/proofread", {"text": f"Teh text number {n}."}).status == 200


def test_a_cursor_of_one_listing_is_refused_by_another(api: ApiClient) -> None:
    sessions(api, 3)
    conversations(api, 3)
    session_cursor = api.get("/sessions", query="limit=1").json()["nextCursor"]
    conversation_cursor = api.get("/conversations", query="limit=1").json()["nextCursor"]
    engine_cursor = api.get("/conversations", query="limit=1&engine=offline").json()["nextCursor"]
    assert session_cursor and conversation_cursor and engine_cursor
    crossed = [
        api.get("/conversations", query=f"cursor={session_cursor}"),
        api.get("/sessions", query=f"cursor={conversation_cursor}"),
        api.get("/conversations", query=f"limit=1&engine=offline&cursor={conversation_cursor}"),  # other filter
        api.get("/conversations", query=f"limit=1&cursor={engine_cursor}"),
        api.get("/conversations", query=f"limit=1&engine=bedrock&cursor={engine_cursor}"),
        api.get("/prompts", query=f"cursor={session_cursor}"),
        api.post("/chat", {"action": "get_sessions", "lastKey": conversation_cursor}),
    ]
    for response in crossed:
        assert_error(response, 400, "INVALID_CURSOR")
    # each in its own listing still works
    assert api.get("/conversations", query=f"limit=1&engine=offline&cursor={engine_cursor}").status == 200
    assert api.post("/chat", {"action": "get_sessions", "lastKey": session_cursor}).status == 200


@pytest.mark.parametrize("change", [
    "missing SK", "extra attribute", "another owner", "outside the range", "not a string", "no scope", "a list",
    "too long",
])
def test_a_tampered_cursor_is_a_400_never_a_dynamodb_error(api: ApiClient, change: str) -> None:
    sessions(api, 2)
    good = decoded(api.get("/sessions", query="limit=1").json()["nextCursor"])
    key = dict(good["k"])
    tampered: Any = {
        "missing SK": {"s": good["s"], "k": {"PK": key["PK"]}},
        "extra attribute": {"s": good["s"], "k": {**key, "GSI1PK": "SESSION#x"}},
        "another owner": {"s": good["s"], "k": {**key, "PK": "DEVICE#victim-device-01"}},
        "outside the range": {"s": good["s"], "k": {**key, "SK": keys.SETTINGS_SK}},
        "not a string": {"s": good["s"], "k": {**key, "SK": 5}},
        "no scope": key,
        "a list": [good],
        "too long": {"s": good["s"], "k": {**key, "SK": "SESSION#2" + "9" * 1100}},
    }[change]
    error = assert_error(api.get("/sessions", query=f"cursor={encoded(tampered)}"), 400, "INVALID_CURSOR")
    assert error["details"][0]["field"] == "cursor"


def test_an_exactly_full_last_page_has_no_next_cursor(api: ApiClient) -> None:
    ids = sessions(api, 4)
    first = api.get("/sessions", query="limit=2").json()
    second = api.get("/sessions", query=f"limit=2&cursor={first['nextCursor']}").json()
    assert [s["sessionId"] for s in first["items"] + second["items"]] == list(reversed(ids))
    assert second["nextCursor"] is None  # not a cursor to an empty page
    everything = api.get("/sessions", query="limit=4").json()
    assert len(everything["items"]) == 4 and everything["nextCursor"] is None
    seed = api.post("/chat", {"action": "get_sessions", "limit": 4}).json()
    assert (len(seed["sessions"]), seed["hasMore"], seed["lastKey"]) == (4, False, None)
    more = api.post("/chat", {"action": "get_sessions", "limit": 3}).json()
    assert (more["hasMore"], bool(more["lastKey"])) == (True, True)


def test_prompts_and_conversations_end_exactly_too(api: ApiClient) -> None:
    for n in range(2):
        api.post("/prompts", {"name": f"Desk {n}"})
    conversations(api, 2)
    assert api.get("/prompts", query="limit=2").json()["nextCursor"] is None
    assert api.get("/conversations", query="limit=2").json()["nextCursor"] is None
    page = api.get("/prompts", query="limit=1").json()
    assert len(api.get("/prompts", query=f"limit=1&cursor={page['nextCursor']}").json()["items"]) == 1
