"""WebSocket $disconnect: forget the connection (API Gateway calls this on a best-effort basis;
the connection item's TTL removes what a missed disconnect leaves behind)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core import clients
from parley.core.config import WebSocketConnectionEnv
from parley.core.observability import logger, tracer
from parley.data.store import Store
from parley.proofreading.connections import Connections

ENV = WebSocketConnectionEnv.load(os.environ)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    Connections(Store(clients.table(ENV.table_name)), ttl_seconds=ENV.ws_connection_ttl_seconds).close(connection_id)
    logger.info("WebSocket disconnected", extra={"connection_id": connection_id})
    return {"statusCode": 200}
