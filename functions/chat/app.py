"""POST /chat: the tutor's AI turn — one learner message in, the tutor's reply out."""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import clients
from parley.ai.factory import build_provider, preload_sdk
from parley.api import make_resolver, owner_of
from parley.chat import Chat, ChatReply, ChatRequest
from parley.config import ChatEnv
from parley.observability import logger, tracer
from parley.quota import guard_from
from parley.store import Store
from parley.tutor import Tutor
from parley.usage import publisher_from

ENV = ChatEnv.load(os.environ)
preload_sdk(ENV)  # the Anthropic SDK in the init phase, only when AI_PROVIDER=anthropic_api
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)
RESPONSE_MARGIN_SECONDS = 1.5  # time kept back to save the reply and answer before the Lambda timeout


@app.post("/chat", summary="The tutor's reply to a learner message", tags=["Tutor"],
          responses={200: {"description": "The reply, who answered it and the tokens used"},
                     429: {"description": "Monthly quota reached"},
                     503: {"description": "No AI engine could answer in time; the message (if any) was saved"}})
def chat(body: ChatRequest) -> ChatReply:
    store = Store(clients.table(ENV.table_name))
    turn = Chat(Tutor(store, retention_days=ENV.data_retention_days), build_provider(ENV),
                publisher=publisher_from(ENV), quota=guard_from(ENV, store),
                max_tokens=ENV.chat_max_tokens, temperature=ENV.anthropic_temperature,
                history_tokens=ENV.chat_history_tokens)
    remaining = app.lambda_context.get_remaining_time_in_millis() / 1000
    return turn.turn(owner_of(app), body, deadline=time.monotonic() + remaining - RESPONSE_MARGIN_SECONDS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
