"""WebSocket $connect: record the connection and its owner (from the authorizer) with a TTL."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core import clients
from parley.core.config import WebSocketConnectionEnv
from parley.core.observability import bind_owner_hash, logger, tracer
from parley.data.store import Store
from parley.proofreading.connections import Connections, owner_from_connect_event

ENV = WebSocketConnectionEnv.load(os.environ)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bind_owner_hash(event)
    owner = owner_from_connect_event(event)
    if owner is None:  # only reachable if the route were deployed without its authorizer
        logger.warning("Connect without an authorized owner refused")
        return {"statusCode": 401, "body": "Unauthorized"}
    connection_id = event["requestContext"]["connectionId"]
    Connections(Store(clients.table(ENV.table_name)), ttl_seconds=ENV.ws_connection_ttl_seconds).open(
        connection_id, owner)
    logger.info("WebSocket connected", extra={"connection_id": connection_id})
    return {"statusCode": 200}
