"""POST /chat: the tutor's AI turn — one learner message in, the tutor's reply out.

The same route also takes seed 000's action envelope (``{"action": "tts", ...}``) so the seed's
clients work by changing their base URL: see ``parley.actions.envelope``. A body with an ``action`` is
an envelope; without one it is Parley's own chat request.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.actions.envelope import ChatBody, EnvelopeDisabled, SeedReply, chat_validation_error
from parley.ai.factory import build_provider, preload_sdk
from parley.core import clients
from parley.core.api import error_response, make_resolver, owner_of, validation_error_response
from parley.core.config import ChatEnv
from parley.core.errors import ParleyError
from parley.core.observability import logger, tracer
from parley.data.store import Store
from parley.tutor.chat import Chat, ChatReply, ChatRequest
from parley.tutor.service import Tutor
from parley.usage.publisher import publisher_from
from parley.usage.quota import guard_from

ENV = ChatEnv.load(os.environ)
preload_sdk(ENV)  # the Anthropic SDK in the init phase, only when AI_PROVIDER=anthropic_api
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)
RESPONSE_MARGIN_SECONDS = 1.5  # time kept back to save the reply and answer before the Lambda timeout
PAUSE = time.sleep  # between reads while the envelope waits for a workflow (tests replace it)


def chat_turn(store: Store) -> Chat:
    return Chat(Tutor(store, retention_days=ENV.data_retention_days), build_provider(ENV),
                publisher=publisher_from(ENV), quota=guard_from(ENV, store),
                max_tokens=ENV.chat_max_tokens, temperature=ENV.anthropic_temperature,
                history_tokens=ENV.chat_history_tokens)


def envelope(store: Store) -> Any:
    """Seed 000's envelope, its services built only when an action needs them."""
    from parley.actions.envelope import Envelope, Services, stream_url_from
    from parley.analysis.service import Analyses
    from parley.speech.transcription.service import Transcriptions
    from parley.speech.voices import Speaker
    from parley.usage.pricing import PriceTable

    tutor = Tutor(store, retention_days=ENV.data_retention_days)
    return Envelope(Services(
        tutor=tutor,
        chat=lambda: chat_turn(store),
        speaker=lambda: Speaker(clients.client("polly"), publisher_from(ENV), guard_from(ENV, store)),
        transcriptions=lambda: Transcriptions(
            store, clients.client("s3"), clients.client("stepfunctions"), bucket=ENV.audio_bucket_name,
            state_machine_arn=ENV.transcription_state_machine_arn, retention_days=ENV.data_retention_days,
            quota=guard_from(ENV, store), prices=PriceTable.with_overrides(ENV.price_table_overrides)),
        analyses=lambda: Analyses(
            store, retention_days=ENV.data_retention_days, min_learner_turns=ENV.analysis_min_learner_turns,
            sfn=clients.client("stepfunctions"), state_machine_arn=ENV.analysis_state_machine_arn,
            quota=guard_from(ENV, store)),
        stream_url=stream_url_from(clients.client("lambda"), ENV.stream_url_function_name),
    ), pause=lambda seconds: PAUSE(seconds))


@app.exception_handler(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response[str]:
    mapped = chat_validation_error(exc)
    if isinstance(mapped, ParleyError):
        return error_response(mapped.status, mapped.code, mapped.message, mapped.details)
    return validation_error_response(mapped)


@app.post("/chat", summary="The tutor's reply to a learner message (or one of seed 000's actions)", tags=["Tutor"],
          description="A body without `action` is a chat turn. A body with `action` is seed 000's envelope, "
                      "answered in the seed's shapes (see docs/migration.md): chat, tts, stt, "
                      "analyze, save_settings, get_settings, start_session, end_session, save_message, "
                      "get_sessions, get_session_detail, delete_session, get_transcribe_url.",
          responses={200: {"description": "The reply, who answered it and the tokens used (or the action's answer)"},
                     201: {"description": "start_session / save_message: created"},
                     202: {"description": "stt / analyze: still running after the wait; poll the given resource"},
                     429: {"description": "Monthly quota reached"},
                     503: {"description": "No AI engine could answer in time; the message (if any) was saved"}})
def chat(body: Annotated[ChatBody, Body()]) -> tuple[ChatReply | SeedReply, int]:
    owner = owner_of(app)
    store = Store(clients.table(ENV.table_name))
    now = time.monotonic()
    deadline = now + app.lambda_context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_SECONDS
    if isinstance(body, ChatRequest):
        return chat_turn(store).turn(owner, body, deadline=deadline), 200
    if ENV.seed_actions != "enabled":
        raise EnvelopeDisabled("This deployment does not take seed 000's action envelope (SeedActions=disabled); "
                               "use the resource routes listed in docs/api.")
    logger.append_keys(action=body.action)
    return envelope(store).handle(owner, body, deadline=deadline,  # type: ignore[no-any-return]
                                  wait_until=now + ENV.envelope_wait_seconds)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
