"""Conversation sessions: start, list, read with messages, end, delete."""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import Response

from parley.core import clients
from parley.core.api import PageCursor, PageLimit, make_resolver, no_content, owner_of, rest_handler
from parley.core.config import ApiEnv
from parley.core.observability import logger
from parley.data.store import Store
from parley.tutor.models import Session, SessionDetail, SessionPage, StartSession
from parley.tutor.service import Tutor

ENV = ApiEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def tutor() -> Tutor:
    return Tutor(Store(clients.table(ENV.table_name)), retention_days=ENV.data_retention_days)


@app.post("/sessions", summary="Start a conversation session", tags=["Tutor"],
          responses={201: {"description": "The new session", "content": {"application/json": {"model": Session}}},
                     200: {"description": "Already started under this clientSessionId; that session is returned"}})
def start_session(body: StartSession) -> tuple[Session, int]:
    session, created = tutor().start_session(owner_of(app), body)
    return session, 201 if created else 200


@app.get("/sessions", summary="List sessions, newest first", tags=["Tutor"])
def list_sessions(limit: PageLimit = 20, cursor: PageCursor = None) -> SessionPage:
    return tutor().list_sessions(owner_of(app), limit=limit, cursor=cursor)


@app.get("/sessions/<sessionId>", summary="A session with its messages in order", tags=["Tutor"])
def get_session(sessionId: str) -> SessionDetail:  # noqa: N803 - the path parameter's public name
    return tutor().session_detail(owner_of(app), sessionId)


@app.post("/sessions/<sessionId>/end", summary="End a session (idempotent)", tags=["Tutor"])
def end_session(sessionId: str) -> Session:  # noqa: N803
    return tutor().end_session(owner_of(app), sessionId)


@app.delete("/sessions/<sessionId>", summary="Delete a session and everything under it", tags=["Tutor"],
            responses={204: {"description": "Deleted"}})
def delete_session(sessionId: str) -> Response[str]:  # noqa: N803
    removed = tutor().delete_session(owner_of(app), sessionId)
    logger.info("Session deleted", extra={"session_id": sessionId, "items": removed})
    return no_content()


handler = rest_handler(app)
