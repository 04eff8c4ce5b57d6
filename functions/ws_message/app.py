"""WebSocket sendMessage / ping / $default, and the answer's own invocation.

From API Gateway (an event with ``requestContext``): ping, or check and acknowledge a ``sendMessage``
and start its work with an asynchronous invocation of this same function - API Gateway ends the
route's integration after 29 s. From that invocation (an event with ``work``): stream the answer to
the connection for up to this function's timeout.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.ai.factory import preload_sdk
from parley.core import clients
from parley.core.config import ProofreadingEnv
from parley.core.observability import logger, tracer
from parley.data.store import Store
from parley.data.ws_requests import Requests
from parley.proofreading import service
from parley.proofreading.connections import Connections, callback_url
from parley.proofreading.frames import Channel
from parley.proofreading.websocket import Job, MessageRouter
from parley.usage.publisher import publisher_from
from parley.usage.ratelimit import RateLimiter

ENV = ProofreadingEnv.load(os.environ)
preload_sdk(ENV)
PAUSE = time.sleep  # while an answer waits for its client to come back (the local stack swaps it)


def router(context: LambdaContext, endpoint: str) -> MessageRouter:
    store = Store(clients.table(ENV.table_name))
    providers = service.metered_providers(ENV, store, publisher_from(ENV))

    def dispatch(job: Job) -> None:
        clients.client("lambda").invoke(FunctionName=context.function_name, InvocationType="Event",
                                        Payload=json.dumps({"work": job.model_dump()}).encode())

    return MessageRouter(Connections(store, ttl_seconds=ENV.ws_connection_ttl_seconds),
                         service.proofreader(ENV, store, clients.client("s3"), providers), Requests(store),
                         dispatch=dispatch, callback_url=endpoint, grace_seconds=ENV.ws_resume_grace_seconds,
                         sleep=lambda seconds: PAUSE(seconds),
                         limiter=RateLimiter(store, limit=ENV.ws_messages_per_minute))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "work" in event:
        job = Job.model_validate(event["work"])
        logger.set_correlation_id(job.request_id)
        management = clients.client("apigatewaymanagementapi", endpoint_url=job.callback_url)
        router(context, job.callback_url).work(job, management,
                                               remaining=lambda: context.get_remaining_time_in_millis() / 1000)
        return {"statusCode": 200}
    connection_id = event["requestContext"]["connectionId"]
    endpoint = callback_url(event, ENV.websocket_callback_url)
    management = clients.client("apigatewaymanagementapi", endpoint_url=endpoint)
    router(context, endpoint).handle(connection_id, event.get("body"), Channel(management, connection_id))
    return {"statusCode": 200}
