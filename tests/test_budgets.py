"""Deterministic cost targets from `make bench` (counts, not timings, so they hold on any machine)."""

from __future__ import annotations

import math

from bench.chat_tokens import measure as chat_tokens
from bench.delete_requests import measure as delete_requests
from bench.envelope_requests import measure as envelope_requests


def test_chat_input_tokens_flatten_as_the_conversation_grows() -> None:
    found = chat_tokens()
    assert found[20][0] <= found[60][0] <= 1.5 * found[5][0], found
    assert found[60][2] is True  # the history was cut to the budget


def test_deleting_a_session_costs_a_batch_per_25_items_plus_a_few_requests() -> None:
    for size, requests, pages, _target in delete_requests():
        assert pages == 1, (size, pages)
        assert requests == math.ceil(size / 25) + pages + 2, (size, requests)


def test_the_envelope_costs_the_route_plus_finding_the_session() -> None:
    rows = {action: (route, parley_id, client_id) for action, route, parley_id, client_id in envelope_requests()}
    assert set(rows) == {"get_settings", "save_settings", "get_sessions", "save_message", "get_session_detail",
                         "end_session", "delete_session"}
    for action in ("get_settings", "get_sessions"):
        assert rows[action][0] == rows[action][1] == rows[action][2]
    assert rows["save_settings"] == (1, 2, 2)  # read, then save the merge
    for action in ("save_message", "get_session_detail", "end_session", "delete_session"):
        route, parley_id, client_id = rows[action]
        assert (parley_id, client_id) == (route + 1, route + 2), action
