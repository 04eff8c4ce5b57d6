"""WebSocket ``tutorTurn``: the streamed tutor turn - the reply's text as it is generated and each
sentence's speech as soon as it is written, posted to the connection from this invocation
(``parley.tutor.voice_turn``; docs/voice-turn.md)."""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.ai.factory import preload_sdk
from parley.core import clients
from parley.core.config import VoiceTurnEnv
from parley.core.observability import bind_owner_hash, logger, tracer
from parley.data.store import Store
from parley.proofreading.connections import callback_url
from parley.proofreading.frames import Channel
from parley.tutor.voice_turn import voice_turn_from

ENV = VoiceTurnEnv.load(os.environ)
preload_sdk(ENV)  # the Anthropic SDK in the init phase, only when AI_PROVIDER=anthropic_api
RESPONSE_MARGIN_SECONDS = 2.0  # kept back to save the reply, finish the speech and send the last frame
PAUSE = time.sleep  # while a resend waits for the turn's first invocation (the local stack swaps it)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bind_owner_hash(event)
    now = time.monotonic()
    left = min(context.get_remaining_time_in_millis() / 1000, ENV.turn_seconds)
    connection_id = event["requestContext"]["connectionId"]
    management = clients.client("apigatewaymanagementapi", endpoint_url=callback_url(event, ENV.websocket_callback_url))
    turn = voice_turn_from(ENV, Store(clients.table(ENV.table_name)))
    turn.sleep = lambda seconds: PAUSE(seconds)
    turn.handle(connection_id, event.get("body"), Channel(management, connection_id),
                deadline=now + left - RESPONSE_MARGIN_SECONDS)
    return {"statusCode": 200}
