"""The action API's services, configured from the chat function's environment, each built only
when an action needs it (a cold start pays for what it uses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parley.actions.context import Services
from parley.actions.dispatch import ActionApi
from parley.actions.errors import ActionsDisabled
from parley.core import clients
from parley.data.store import Store
from parley.tutor.service import Tutor


def action_api(env: Any, store: Store, *, pause: Callable[[float], None]) -> ActionApi:
    """The action API of a deployment with ``SeedActions=enabled`` (``ActionsDisabled``, a 400, otherwise)."""
    if env.seed_actions != "enabled":
        raise ActionsDisabled("This deployment does not take the original backend's action API "
                              "(SeedActions=disabled); use the resource routes listed in docs/api.")
    from parley.analysis.service import analyses_from
    from parley.speech.transcription.service import transcriptions_from
    from parley.speech.transcription.stream_url import stream_urls_by_call
    from parley.speech.voices import speaker_from
    from parley.tutor.chat import chat_from

    return ActionApi(Services(
        tutor=Tutor(store, retention_days=env.data_retention_days),
        chat=lambda: chat_from(env, store),
        speaker=lambda: speaker_from(env, store),
        transcriptions=lambda: transcriptions_from(env, store, state_machine_arn=env.transcription_state_machine_arn),
        analyses=lambda: analyses_from(env, store),
        stream_url=stream_urls_by_call(clients.client("lambda"), env.stream_url_function_name),
    ), pause=pause)
