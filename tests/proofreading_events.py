"""Setups and checks for the proofreading functions' sample events (tests/test_events.py)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from parley.data import keys

SAMPLE_OWNER = "DEVICE#sample-device-0001"


def conversation(names: dict[str, str], event: dict[str, Any]) -> None:
    """One offline-engine conversation of the sample device, for GET /conversations?engine=offline."""
    conversation_id = "01KAR5S0J1ZQ4V8S9X2M3N4P5Q"
    boto3.resource("dynamodb").Table(names["Table"]).put_item(Item={
        "PK": SAMPLE_OWNER, "SK": keys.conversation_sk(conversation_id),
        "GSI1PK": keys.conversation_engine_gsi1pk(SAMPLE_OWNER, "offline"),
        "GSI1SK": keys.conversation_sk(conversation_id),
        "type": "CONVERSATION", "conversationId": conversation_id, "title": "정부는 내년 예산을", "mode": "proofread",
        "engine": "offline", "model": "parley-offline-1", "turnCount": 1,
        "createdAt": "2026-11-22T01:54:30.000000Z", "updatedAt": "2026-11-22T01:54:30.000000Z"})


def connection(names: dict[str, str], event: dict[str, Any]) -> None:
    """The sample event's connection, as $connect recorded it."""
    connection_id = event["requestContext"]["connectionId"]
    boto3.resource("dynamodb").Table(names["Table"]).put_item(Item={
        "PK": keys.connection_pk(connection_id), "SK": keys.CONNECTION_SK, "type": "WS_CONNECTION",
        "connectionId": connection_id, "owner": SAMPLE_OWNER, "expiresAt": 4_102_444_800})


def proofread(result: Any) -> None:
    assert result["statusCode"] == 200, result
    body = json.loads(result["body"])
    assert "할 수 있다" in body["correctedText"] and "government" in body["correctedText"], body
    assert all(c["offset"] >= 0 and c["length"] > 0 for c in body["corrections"])


def one_conversation(result: Any) -> None:
    assert result["statusCode"] == 200, result
    assert [c["engine"] for c in json.loads(result["body"])["items"]] == ["offline"]


def accepted(result: Any) -> None:
    assert result == {"statusCode": 200}, result


def streamed_to_the_connection(result: Any) -> None:
    """The answer reached the connection (moto's @connections keeps what was posted)."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    assert result == {"statusCode": 200}, result
    connections = apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections
    data = b"".join(c.data for key, c in connections.items() if key.startswith("L0SM9cOFvHcCIhw"))
    assert b'"type":"complete"' in data and "할 수 있다".encode() in data, data[:500]
