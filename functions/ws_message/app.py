"""WebSocket sendMessage / ping / $default: stream a proofreading or chat answer to the connection."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import clients
from parley.ai.factory import preload_sdk
from parley.config import ProofreadingEnv
from parley.observability import logger, tracer
from parley.proofreading import service
from parley.proofreading.connections import Connections, callback_url
from parley.proofreading.websocket import Channel, MessageRouter
from parley.ratelimit import RateLimiter
from parley.store import Store
from parley.usage import publisher_from

ENV = ProofreadingEnv.load(os.environ)
preload_sdk(ENV)


def router() -> MessageRouter:
    store = Store(clients.table(ENV.table_name))
    providers = service.metered_providers(ENV, store, publisher_from(ENV))
    return MessageRouter(Connections(store, ttl_seconds=ENV.ws_connection_ttl_seconds),
                         service.proofreader(ENV, store, clients.client("s3"), providers),
                         limiter=RateLimiter(store, limit=ENV.ws_messages_per_minute))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    management = clients.client("apigatewaymanagementapi", endpoint_url=callback_url(event, ENV.websocket_callback_url))
    router().handle(connection_id, event.get("body"), Channel(management, connection_id),
                    remaining=lambda: context.get_remaining_time_in_millis() / 1000)
    return {"statusCode": 200}
