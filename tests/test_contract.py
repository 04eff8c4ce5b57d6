"""One contract for clients: every enum in the original backend's spellings goes in, one documented
spelling comes out, the same on every route and in both APIs; one session shape; unknown routes;
a replayed chat answer names who wrote it; the analysis is camelCase all the way down."""

from __future__ import annotations

from typing import Any

import pytest

from parley.actions.replies import ActionStoredAnalysis
from tests.conftest import ApiClient, assert_error

pytestmark = pytest.mark.shared_aws  # its tests keep apart by owner: one emulator for the module


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return response.json()


def act(api: ApiClient, action: str, **fields: Any) -> Any:
    return api.post("/chat", {"action": action, **fields})


# The original backend's spellings of each value (its docs, its clients), and the one Parley answers.
SPELLINGS: dict[str, dict[str, list[str]]] = {
    "accent": {"US": ["US", "us", "Us"], "UK": ["UK", "uk"], "AU": ["AU", "au", "Au"], "IN": ["IN", "in"]},
    "level": {"beginner": ["Beginner", "beginner"], "intermediate": ["Intermediate", "INTERMEDIATE"],
              "advanced": ["Advanced", "advanced"]},
    "topic": {"business": ["Business", "business"], "daily": ["Daily"], "travel": ["Travel", "TRAVEL"],
              "interview": ["Interview"]},
    "gender": {"female": ["Female", "female"], "male": ["Male", "MALE"]},
}
CASES = [(field, answer, given) for field, values in SPELLINGS.items()
         for answer, spellings in values.items() for given in spellings]


@pytest.mark.parametrize(("field", "answer", "given"), CASES, ids=[f"{f}={g}" for f, _, g in CASES])
def test_settings_round_trip_in_both_apis_in_one_spelling(api: ApiClient, field: str, answer: str,
                                                          given: str) -> None:
    # saved through the action API, read through both
    ok(act(api, "save_settings", settings={field: given}))
    assert ok(act(api, "get_settings"))["settings"][field] == answer
    assert ok(api.get("/settings"))[field] == answer
    # saved through the resource route, read through both
    ok(api.put("/settings", {field: given}))
    assert ok(api.get("/settings"))[field] == answer
    assert ok(act(api, "get_settings"))["settings"][field] == answer


@pytest.mark.parametrize(("field", "answer", "given"), CASES, ids=[f"{f}={g}" for f, _, g in CASES])
def test_sessions_answer_one_spelling_on_every_route(api: ApiClient, field: str, answer: str, given: str) -> None:
    client_id = f"client-{field}-{given}-0001"
    started = ok(act(api, "start_session", sessionId=client_id, settings={field: given}), 201)
    parley_id = started["session"]["sessionId"]
    route = ok(api.post("/sessions", {field: given}), 201)
    answers = [
        started["session"][field], route[field],
        ok(act(api, "get_sessions", limit=100))["sessions"][1][field],
        ok(act(api, "get_session_detail", sessionId=client_id))["session"][field],
        ok(api.get(f"/sessions/{parley_id}"))[field],
        ok(api.get("/sessions", query="limit=100"))["items"][1][field],
        ok(act(api, "end_session", sessionId=client_id))["session"][field],
        ok(api.post(f"/sessions/{route['sessionId']}/end"))[field],
    ]
    assert answers == [answer] * len(answers)


def test_a_value_no_spelling_of_which_exists_is_still_refused(api: ApiClient) -> None:
    assert_error(act(api, "save_settings", settings={"accent": "fr"}), 422, "VALIDATION_ERROR")
    assert_error(api.put("/settings", {"level": "expert"}), 422, "VALIDATION_ERROR")
    assert_error(api.post("/sessions", {"topic": "sports"}), 422, "VALIDATION_ERROR")


def test_a_message_role_may_come_in_either_case_and_is_answered_in_one(api: ApiClient) -> None:
    sid = ok(api.post("/sessions", {}), 201)["sessionId"]
    saved = ok(api.post(f"/sessions/{sid}/messages", {"role": "User", "content": "Hi"}), 201)
    assert saved["role"] == "user"


def test_one_session_shape_everywhere(api: ApiClient) -> None:
    started = ok(act(api, "start_session", sessionId="client-shape-0001", settings={"level": "Advanced"}), 201)
    session = started["session"]
    parley_id = session["sessionId"]
    views = {
        "start_session": session,
        "get_sessions": ok(act(api, "get_sessions"))["sessions"][0],
        "get_session_detail": ok(act(api, "get_session_detail", sessionId="client-shape-0001"))["session"],
        "GET /sessions": ok(api.get("/sessions"))["items"][0],
        "GET /sessions/{id}": {k: v for k, v in ok(api.get(f"/sessions/{parley_id}")).items() if k != "messages"},
    }
    for name, view in views.items():
        assert view == session, name  # the same keys and values: topic, accent... at the top, no `settings`
    assert session["duration"] is None and session["status"] == "active"  # active: no duration, anywhere
    ended = ok(act(api, "end_session", sessionId="client-shape-0001"))["session"]
    assert set(ended) == set(session) and ended == ok(api.post(f"/sessions/{parley_id}/end"))
    assert isinstance(ended["duration"], int) and ended == ok(act(api, "get_sessions"))["sessions"][0]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/nope"), ("POST", "/sessions/x/y/z"), ("GET", "/chat"), ("DELETE", "/settings"), ("PUT", "/usage"),
])
def test_an_unknown_route_is_404_route_not_found(api: ApiClient, method: str, path: str) -> None:
    """An unknown path and a method its path does not have are one case for API Gateway: 404."""
    assert_error(api.request(method, path), 404, "ROUTE_NOT_FOUND")
    assert_error(api.request(method, path, headers={"Authorization": "Bearer x.y.z"}), 404, "ROUTE_NOT_FOUND")


def test_a_replayed_chat_answer_names_the_engine_and_model_that_wrote_it(api: ApiClient) -> None:
    sid = ok(api.post("/sessions", {}), 201)["sessionId"]
    body = {"sessionId": sid, "message": "I visited my aunt.", "messageId": "client-message-0001"}
    first = ok(api.post("/chat", body))
    again = ok(api.post("/chat", body))
    assert again["replayed"] is True and again["reply"] == first["reply"]
    assert (again["engine"], again["model"]) == (first["engine"], first["model"]) == ("offline", "parley-offline-1")


def test_the_stored_analysis_is_camel_case_at_every_level() -> None:
    stored = ActionStoredAnalysis.model_validate({
        "cafp_scores": {"complexity": 70}, "fillers": {"count": 1, "words": ["um"], "percentage": 2.0},
        "grammar_corrections": [{"original": "goed", "corrected": "went", "explanation": "past tense"}],
        "vocabulary": {"total_words": 50, "unique_words": 30, "advanced_words": [], "suggested_words": ["stroll"]},
        "overall_feedback": "Good.", "improvement_tips": ["Practise the past tense."]})
    dumped = stored.model_dump(by_alias=True)

    def keys_of(value: Any) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {k for v in value.values() for k in keys_of(v)}
        if isinstance(value, list):
            return {k for v in value for k in keys_of(v)}
        return set()

    assert not [k for k in keys_of(dumped) if "_" in k]
    assert set(dumped["vocabulary"]) == {"totalWords", "uniqueWords", "advancedWords", "suggestedWords"}
