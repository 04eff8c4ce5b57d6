"""Setup and check of the streamed turn's sample event (events/ws_tutor_turn.json), for tests/test_events.py."""

from __future__ import annotations

import json
from typing import Any

import boto3

from parley.data import keys
from tests import proofreading_events

SAMPLE_OWNER = proofreading_events.SAMPLE_OWNER


def connection_and_session(names: dict[str, str], event: dict[str, Any]) -> None:
    """The sample event's connection (as $connect recorded it) and the session its message names."""
    proofreading_events.connection(names, event)
    session_id = json.loads(event["body"])["sessionId"]
    boto3.resource("dynamodb").Table(names["Table"]).put_item(Item={
        "PK": SAMPLE_OWNER, "SK": keys.session_meta_sk(session_id), "GSI1PK": keys.session_gsi1pk(session_id),
        "GSI1SK": "META", "type": "SESSION_META", "sessionId": session_id, "tutorName": "Emma", "topic": "daily",
        "accent": "US", "level": "intermediate", "gender": "female", "status": "active",
        "startedAt": keys.session_started_at(session_id), "messageCount": 0})


def streamed_turn(result: Any) -> None:
    """The turn reached the connection: accepted, its text, its audio and the saved turn."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    assert result == {"statusCode": 200}, result
    connections = apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections
    data = b"".join(c.data for key, c in connections.items() if key.startswith("V0TT9cOFvHcCIhw"))
    for kind in (b'"type":"accepted"', b'"type":"text"', b'"type":"audio"', b'"type":"complete"'):
        assert kind in data, (kind, data[:500])
