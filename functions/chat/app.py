"""POST /chat: the tutor's AI turn - one learner message in, the tutor's reply out.

The same route also takes the action API of the original tutor backend (``{"action": "tts", ...}``)
so its clients work by changing their base URL: a body with an ``action`` goes to ``parley.actions``;
without one it is Parley's own chat request.
"""

from __future__ import annotations

import os
import time
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body

from parley.actions.errors import chat_validation_response
from parley.actions.replies import ActionReply
from parley.actions.requests import ChatBody
from parley.ai.factory import preload_sdk
from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import ChatEnv
from parley.core.observability import logger
from parley.data.store import Store
from parley.tutor.chat import ChatReply, ChatRequest, chat_from

ENV = ChatEnv.load(os.environ)
preload_sdk(ENV)  # the Anthropic SDK in the init phase, only when AI_PROVIDER=anthropic_api
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)
RESPONSE_MARGIN_SECONDS = 1.5  # time kept back to save the reply and answer before the Lambda timeout
PAUSE = time.sleep  # between reads while an action waits for a workflow (tests replace it)


@app.exception_handler(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response[str]:
    return chat_validation_response(exc)


@app.post("/chat", summary="The tutor's reply to a learner message (or an action of the original backend)",
          tags=["Tutor"],
          description="A body without `action` is a chat turn. A body with `action` is the action API of the "
                      "original tutor backend, answered in its shapes (see docs/migration.md): chat, tts, stt, "
                      "analyze, save_settings, get_settings, start_session, end_session, save_message, "
                      "get_sessions, get_session_detail, delete_session, get_transcribe_url.",
          responses={200: {"description": "The reply, who answered it and the tokens used (or the action's answer)"},
                     201: {"description": "start_session / save_message: created"},
                     202: {"description": "stt / analyze: still running after the wait; poll the given resource"},
                     429: {"description": "Monthly quota reached"},
                     503: {"description": "No AI engine could answer in time; the message (if any) was saved"}})
def chat(body: Annotated[ChatBody, Body()]) -> tuple[ChatReply | ActionReply, int]:
    owner, store, now = owner_of(app), Store(clients.table(ENV.table_name)), time.monotonic()
    deadline = now + app.lambda_context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_SECONDS
    if isinstance(body, ChatRequest):
        return chat_from(ENV, store).turn(owner, body, deadline=deadline), 200
    from parley.actions.services import action_api  # only an action body pays for the action API's services

    logger.append_keys(action=body.action)
    return action_api(ENV, store, pause=lambda seconds: PAUSE(seconds)).handle(
        owner, body, deadline=deadline, wait_until=now + ENV.envelope_wait_seconds)


handler = rest_handler(app)
