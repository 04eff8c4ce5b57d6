"""`make run` end to end: a session made through the API is analysed by the local stack's state
machine (offline engine), and the report and the trend come back over HTTP."""

from __future__ import annotations

import time

from tests.test_local_stack import call, local_url

__all__ = ["local_url"]  # the module-scoped local stack fixture, reused here

LEARNER = ["I go to the market yesterday with my sister.",
           "We bought a lot of apples and the weather was very good.",
           "Um, it was, like, more better than last week because the sun was shining."]


def test_the_local_stack_analyses_a_session_made_through_the_api(local_url: str) -> None:
    # Given a session with three learner turns, made through the API
    status, _, session = call(local_url, "POST", "/sessions", {"topic": "daily"})
    assert status == 201
    sid = session["sessionId"]
    for text in LEARNER:
        assert call(local_url, "POST", f"/sessions/{sid}/messages", {"role": "assistant", "content": "And?"})[0] == 201
        assert call(local_url, "POST", f"/sessions/{sid}/messages", {"role": "user", "content": text})[0] == 201

    # When the analysis is started
    status, _, started = call(local_url, "POST", f"/sessions/{sid}/analysis")
    assert status == 202 and started["status"] == "running", started

    # Then it completes (polled over HTTP, bounded by a deadline) with a report quoting the learner
    deadline = time.monotonic() + 60
    body = started
    while body["status"] == "running" and time.monotonic() < deadline:
        status, _, body = call(local_url, "GET", f"/sessions/{sid}/analysis")
        assert status == 200, body
    assert body["status"] == "completed", body
    report = body["report"]
    assert report["engine"] == "offline" and report["quoteCheck"]["dropped"] == 0
    assert "more better" in [c["original"] for c in report["corrections"]]
    assert report["measurements"]["text"]["learnerTurns"] == 3
    assert report["scores"]["pronunciation"]["score"] is None  # no speech in this session

    # ...and asking again changes nothing; the trend shows the session
    assert call(local_url, "POST", f"/sessions/{sid}/analysis")[0] == 200
    status, _, progress = call(local_url, "GET", "/progress")
    assert status == 200 and sid in [s["sessionId"] for s in progress["sessions"]]
