"""DynamoDB requests of seed 000's envelope actions against the resource routes they stand for.

The envelope calls the same domain services as the routes, so its cost is theirs plus what it adds:
finding the session behind a ``sessionId`` (one GetItem for Parley's id; the client id's item and
the session for a client's own id), merging settings before saving them (the seed sent them whole),
and the analysis that ``get_session_detail`` shows beside the session. Counted by the Store on moto,
for one session with 10 messages, in the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.emulated import emulated_table
from bench.registry import benchmark, print_table


def measure() -> list[tuple[str, int, int, int]]:
    """[(action, route requests, envelope requests with Parley's id, with the client's id)]."""
    from pydantic import TypeAdapter

    from parley.actions.context import Services
    from parley.actions.dispatch import ActionApi
    from parley.actions.requests import ActionRequest
    from parley.analysis.service import Analyses
    from parley.data.store import Store
    from parley.tutor.models import NewMessage, Settings, StartSession
    from parley.tutor.service import Tutor

    def unused() -> Any:
        raise AssertionError("not a data action")

    rows: list[tuple[str, int, int, int]] = []
    with emulated_table() as table:
        store = Store(table)
        tutor = Tutor(store, retention_days=90)
        analyses = Analyses(store)
        envelope = ActionApi(Services(tutor=tutor, chat=unused, speaker=unused, transcriptions=unused,
                                     analyses=lambda: analyses, stream_url=lambda *a: unused()))

        def count(call: Callable[[], Any]) -> int:
            store.calls.clear()
            call()
            return store.requests

        actions: TypeAdapter[Any] = TypeAdapter(ActionRequest)  # validated as the route validates them

        def act(owner: str, action: str, **fields: Any) -> int:
            parsed = actions.validate_python({"action": action, **fields})
            return count(lambda: envelope.handle(owner, parsed, deadline=1e12, wait_until=0))

        def session(owner: str, client_id: str) -> str:
            made, _ = tutor.start_session(owner, StartSession(client_session_id=client_id))
            for n in range(10):
                tutor.add_message(owner, made.session_id, NewMessage(role="user" if n % 2 else "assistant",
                                                                     content=f"Message number {n}."))
            return made.session_id

        owner = "DEVICE#bench-envelope"
        sid = session(owner, "client-bench-01")
        message = {"role": "user", "content": "One more."}
        cases: list[tuple[str, Callable[[], Any], dict[str, Any]]] = [
            ("get_settings", lambda: tutor.get_settings(owner), {}),
            ("save_settings", lambda: tutor.put_settings(owner, Settings(accent="UK")), {"settings": {"accent": "uk"}}),
            ("get_sessions", lambda: tutor.list_sessions(owner, limit=10, cursor=None), {"limit": 10}),
            ("save_message", lambda: tutor.add_message(owner, sid, NewMessage(**message)), {"message": message}),
            ("get_session_detail", lambda: (tutor.session_detail(owner, sid), _analysis(analyses, owner, sid)), {}),
        ]
        for action, route, fields in cases:
            with_id = {"sessionId": sid} if action not in ("get_settings", "save_settings", "get_sessions") else {}
            with_client = {"sessionId": "client-bench-01"} if with_id else {}
            rows.append((action, count(route), act(owner, action, **fields, **with_id),
                         act(owner, action, **fields, **with_client)))
        # actions that change a session for good: three identical sessions each, one per way in
        for n, (action, route_call) in enumerate((("end_session", tutor.end_session),
                                                  ("delete_session", tutor.delete_session))):
            ids = [f"client-bench-{n}{way}" for way in range(3)]
            route_sid, parley_sid, _ = (session(owner, client_id) for client_id in ids)
            rows.append((action, count(lambda: route_call(owner, route_sid)),  # noqa: B023 - called at once
                         act(owner, action, sessionId=parley_sid), act(owner, action, sessionId=ids[2])))
    return rows


def _analysis(analyses: Any, owner: str, session_id: str) -> Any:
    """GET /sessions/{id}/analysis, as a native client asks for what get_session_detail shows."""
    from parley.core.errors import NotFound

    try:
        return analyses.get(owner, session_id)
    except NotFound:
        return None


@benchmark("envelope-requests", "DynamoDB requests of seed 000's envelope actions vs their resource routes")
def envelope_requests(runs: int) -> None:
    print_table(("action", "route", "envelope", "ratio", "client id", "ratio"),
                [(action, route, parley_id, f"{parley_id / route:.2f}x", client_id, f"{client_id / route:.2f}x")
                 for action, route, parley_id, client_id in measure()])
    print("  route = the route's domain calls (get_session_detail: GET /sessions/{id} + GET .../analysis);")
    print("  envelope = the same action through the envelope with Parley's session id, then with the client's own")
