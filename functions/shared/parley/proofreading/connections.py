"""WebSocket connections (seed 003's ``websocket-connections`` table) and the $connect rules.

A connection is the item ``PK=WSCONN#<connectionId>, SK=CONNECTION`` with the owner the $connect
authorizer decided and a TTL just past API Gateway's 2-hour maximum connection duration. Message
routes read the owner from here, never from a message. Kept small: the $connect authorizer and
the connect/disconnect functions import only this module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from parley.core.api import OWNER_PATTERN
from parley.core.ids import iso_micros, utcnow
from parley.data import keys
from parley.data.store import Store


# -- connections ---------------------------------------------------------------------------------
class Connections:
    def __init__(self, store: Store, *, ttl_seconds: int) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds

    def open(self, connection_id: str, owner: str) -> None:
        now = utcnow()
        self.store.put({"PK": keys.connection_pk(connection_id), "SK": keys.CONNECTION_SK, "type": "WS_CONNECTION",
                        "connectionId": connection_id, "owner": owner, "connectedAt": iso_micros(now),
                        "expiresAt": int(now.timestamp()) + self.ttl_seconds})

    def owner_of(self, connection_id: str) -> str | None:
        item = self.store.get(keys.connection_pk(connection_id), keys.CONNECTION_SK)
        if not item or int(item.get("expiresAt", 0)) < int(time.time()):
            return None  # TTL deletion lags; an expired item is treated as gone
        return str(item["owner"])

    def close(self, connection_id: str) -> None:
        self.store.delete(keys.connection_pk(connection_id), keys.CONNECTION_SK)


def owner_from_connect_event(event: Mapping[str, Any]) -> str | None:
    """The owner the $connect authorizer put in the request context, if well-formed."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    owner = context.get("owner")
    return owner if isinstance(owner, str) and OWNER_PATTERN.match(owner) else None


def callback_url(event: Mapping[str, Any], override: str = "") -> str:
    """Where to post messages for this event's connection (the @connections endpoint)."""
    if override:
        return override.rstrip("/")
    context = event.get("requestContext") or {}
    return f"https://{context['domainName']}/{context['stage']}"
