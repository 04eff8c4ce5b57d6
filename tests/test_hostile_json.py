"""JSON deeper or longer than any parser takes (5,000 levels, 5,000-digit numbers) is a 400 with the
one error body on every REST route that takes a body, and an error message on the WebSocket — never a
crash."""

from __future__ import annotations

import re
import uuid

import pytest

from local_stack.gateway import RestGateway
from local_stack.lambdas import FunctionRunner
from local_stack.template import Stack
from parley.core import jsonlimits
from tests.conftest import ApiClient, assert_error
from tests.test_proofreading_websocket import Sockets, Ws, sockets, ws

__all__ = ["sockets", "ws"]  # the WebSocket tests' fixtures, reused here
DEEP = "[" * 5_000 + "]" * 5_000
DEEP_IN_A_FIELD = '{"message": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}"
HUGE_NUMBER = '{"limit": ' + "9" * 5_000 + "}"
HUGE_IN_A_LIST = '{"messages": [' + "1" * 5_000 + "]}"
BODIES = {"deep": DEEP, "deep-in-a-field": DEEP_IN_A_FIELD, "huge-number": HUGE_NUMBER,
          "huge-in-a-list": HUGE_IN_A_LIST}


pytestmark = pytest.mark.shared_aws  # its tests keep apart by owner: one emulator for the module


def json_routes(stack: Stack) -> list[tuple[str, str]]:
    """(method, path) of every REST route that takes a body, path parameters filled in."""
    routes = RestGateway(stack, FunctionRunner(stack)).routes
    return sorted({(r.method, re.sub(r"\{[^}]+\}", "01KAJ7ZQ8M3N5P7R9T1V3X5Z7B", r.path))
                   for r in routes if r.method in ("POST", "PUT", "PATCH")})


def test_every_body_route_is_covered(stack: Stack) -> None:
    paths = {path for _, path in json_routes(stack)}
    assert {"/chat", "/settings", "/sessions", "/proofread", "/transcriptions", "/prompts"} <= paths


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_every_json_route_answers_400_to_hostile_json(api: ApiClient, stack: Stack, kind: str) -> None:
    answers = {(method, path): api.request(method, path, body=BODIES[kind]) for method, path in json_routes(stack)}
    for (method, path), response in answers.items():
        error = assert_error(response, 400, "JSON_TOO_COMPLEX")
        assert error["details"][0]["limit"] in ("depth", "numberDigits"), (method, path)


def test_json_within_the_limits_still_reaches_the_route(api: ApiClient) -> None:
    nested = '{"tutorName": "Zed", "accent": "UK"' + ', "x": ' + "[" * 20 + "]" * 20 + "}"
    assert_error(api.put("/settings", body=nested), 422, "VALIDATION_ERROR")  # x is unknown: validated, not refused
    assert api.put("/settings", body='{"tutorName": "Zed", "accent": "UK"}').status == 200
    # digits inside strings are text, not numbers: the audio and the texts may be long
    jsonlimits.check('{"text": "' + "7" * 10_000 + '", "a": [[[1]]]}')


@pytest.mark.parametrize("query", ["limit=" + "9" * 5_000, "limit=-" + "1" * 5_000, "cursor=" + "[" * 5_000])
def test_hostile_query_values_are_4xx(api: ApiClient, query: str) -> None:
    response = api.get("/sessions", query=query)
    assert 400 <= response.status < 500, response.body


def test_the_websocket_answers_hostile_json_with_an_error_message(ws: Ws, sockets: Sockets) -> None:
    connection_id = ws.connect(f"hostile-{uuid.uuid4().hex[:10]}")
    for body in BODIES.values():
        assert ws.send(connection_id, body) == {"statusCode": 200}  # the message function did not crash
    deep_message = '{"action": "sendMessage", "text": "hi", "x": ' + "[" * 5_000 + "]" * 5_000 + "}"
    assert ws.send(connection_id, deep_message) == {"statusCode": 200}
    codes = [m["error"]["code"] for m in sockets.messages(connection_id)]
    assert codes == ["JSON_TOO_COMPLEX"] * (len(BODIES) + 1)
    # and the connection still works
    ws.send(connection_id, {"action": "ping", "requestId": "p1"})
    assert sockets.messages(connection_id)[-1]["type"] == "pong"


def test_a_big_body_of_base64_audio_passes_the_check() -> None:
    jsonlimits.check('{"audio": "' + "QUJD" * 1_500_000 + '"}')  # 6 MB: strings are skipped, nothing to refuse
    with pytest.raises(jsonlimits.JsonTooComplex):
        jsonlimits.check('{"audio": "' + "QUJD" * 1_500_000 + '", "n": ' + "[" * 40 + "]" * 40 + "}")
