"""Setups and checks for the analysis functions' sample events (registered in tests/test_events.py)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local_stack.template import ACCOUNT
from parley.data import keys

SAMPLE_OWNER = "DEVICE#sample-device-0001"
CONVERSATION = [
    ("assistant", "What did you do at the weekend?"),
    ("user", "I go to the market yesterday with my sister."),
    ("assistant", "Nice! What did you buy?"),
    ("user", "We bought a lot of apples and the weather was very good."),
    ("assistant", "How was it compared to last week?"),
    ("user", "Um, it was, like, more better than last week because the sun was shining."),
]


def _session_id(event: dict[str, Any]) -> str:
    return str((event.get("pathParameters") or {}).get("sessionId") or event["sessionId"])


def session_with_turns(names: dict[str, str], event: dict[str, Any]) -> None:
    """The sample device's session with three learner turns (and, for a task event, its running analysis)."""
    session_id = _session_id(event)
    table = boto3.resource("dynamodb").Table(names["Table"])
    started = keys.session_started_at(session_id)
    last = f"{started[:-4]}9{started[-3:]}"  # within the same second, after the start
    table.put_item(Item={
        "PK": SAMPLE_OWNER, "SK": keys.session_meta_sk(session_id), "GSI1PK": keys.session_gsi1pk(session_id),
        "GSI1SK": "META", "type": "SESSION_META", "sessionId": session_id, "tutorName": "Emma", "topic": "daily",
        "accent": "US", "level": "intermediate", "gender": "female", "status": "active", "startedAt": started,
        "messageCount": len(CONVERSATION), "turnCount": 3, "wordCount": 31, "lastMessageAt": last,
    })
    for n, (role, content) in enumerate(CONVERSATION):
        created = f"{started[:-1]}{n:03d}Z"
        table.put_item(Item={"PK": SAMPLE_OWNER, "SK": keys.message_sk(session_id, created), "type": "MESSAGE",
                             "sessionId": session_id, "messageId": f"sample-msg-{n:04d}", "role": role,
                             "content": content, "turnNumber": (n + 1) // 2, "createdAt": created})
    if "executionName" in event:
        table.put_item(Item={"PK": SAMPLE_OWNER, "SK": keys.analysis_sk(session_id), "type": "ANALYSIS",
                             "sessionId": session_id, "status": "running", "fingerprint": event["fingerprint"],
                             "attempt": 1, "executionName": event["executionName"],
                             "requestedAt": "2026-11-22T01:58:00.000000Z"})


def session_and_state_machine(names: dict[str, str], event: dict[str, Any]) -> None:
    """The session, and a stand-in for the analysis state machine (under the template's name) to start."""
    session_with_turns(names, event)
    boto3.client("stepfunctions").create_state_machine(
        name="parley-test-analysis", roleArn=f"arn:aws:iam::{ACCOUNT}:role/sample",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))


def started(result: Any) -> None:
    assert result["statusCode"] == 202, result
    body = json.loads(result["body"])
    assert (body["status"], body["upToDate"]) == ("running", True)


def measured(result: Any) -> None:
    text = result["measurements"]["text"]
    assert (text["learnerTurns"], text["fillerBreakdown"]) == (3, {"um": 1, "like": 1})
    assert result["measurements"]["speech"] is None


def judged(result: Any) -> None:
    report = result["report"]
    assert report["engine"] == "offline" and report["quoteCheck"]["dropped"] == 0
    assert report["scores"]["pronunciation"]["measured"] is True
    assert "more better" in [c["original"] for c in report["corrections"]]


def saved(result: Any) -> None:
    assert result["owner"] == SAMPLE_OWNER and result["cefr"] in ("A1", "A2", "B1", "B2", "C1", "C2")
    assert set(result["scores"]) == {"complexity", "accuracy", "fluency", "pronunciation"}


def marked_failed(result: Any) -> None:
    assert result["marked"] is True and result["error"] == "InvalidModelOutput"
    assert result["reason"].startswith("The model's report was invalid twice")
