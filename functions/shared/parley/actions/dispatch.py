"""The action API's dispatch: one adapter per action, in an explicit table.

Every action is answered by the same domain services as its resource route; the adapters only
translate the original backend's request and reply shapes (and wait for the two workflows):

    action               resource route                               adapter
    chat                 POST /chat (``messages``: explicit history)  actions.chat
    tts                  POST /speech                                 actions.speech
    stt                  POST /transcriptions + GET /transcriptions/{id}  actions.speech
    get_transcribe_url   GET /transcriptions/stream-url               actions.speech
    analyze              POST + GET /sessions/{id}/analysis           actions.analysis
    save_settings        PUT /settings                                actions.settings
    get_settings         GET /settings                                actions.settings
    start_session        POST /sessions (clientSessionId)             actions.sessions
    end_session          POST /sessions/{id}/end                      actions.sessions
    save_message         POST /sessions/{id}/messages                 actions.sessions
    get_sessions         GET /sessions                                actions.sessions
    get_session_detail   GET /sessions/{id} (+ its analysis)          actions.sessions
    delete_session       DELETE /sessions/{id}                        actions.sessions

The owner comes from the authorizer, as everywhere; ``deviceId``/``userId`` in a body are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from parley.actions import analysis, chat, sessions, settings, speech
from parley.actions.context import Answer, Call, Services
from parley.actions.errors import InvalidValue

Adapter = Callable[[Services, str, Any, Call], Answer]
ADAPTERS: dict[str, Adapter] = {
    "chat": chat.chat,
    "tts": speech.tts,
    "stt": speech.stt,
    "get_transcribe_url": speech.get_transcribe_url,
    "analyze": analysis.analyze,
    "save_settings": settings.save_settings,
    "get_settings": settings.get_settings,
    "start_session": sessions.start_session,
    "end_session": sessions.end_session,
    "save_message": sessions.save_message,
    "get_sessions": sessions.get_sessions,
    "get_session_detail": sessions.get_session_detail,
    "delete_session": sessions.delete_session,
}


class ActionApi:
    def __init__(self, services: Services, *, clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], None] = time.sleep) -> None:
        self.services = services
        self.clock = clock
        self.pause = pause

    def handle(self, owner: str, request: BaseModel, *, deadline: float, wait_until: float) -> Answer:
        """Answer one action: (reply, HTTP status). ``deadline`` is when the answer must be ready
        (``clock()`` time); ``wait_until`` (earlier) is how long a workflow is waited for."""
        adapter = ADAPTERS[request.action]  # type: ignore[attr-defined]  # every request model has one
        call = Call(deadline=deadline, wait_until=min(wait_until, deadline), clock=self.clock, pause=self.pause)
        try:
            return adapter(self.services, owner, request, call)
        except PydanticValidationError as exc:
            raise InvalidValue.of(exc) from exc
