"""Conversation sessions: start, list, read with messages, end, delete."""

from __future__ import annotations

import os

from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.collection_routes import Delete, Page, Read, collection_routes
from parley.core.config import ApiEnv
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


collection_routes(
    app, "/sessions", "sessionId", noun="session", tags=["Tutor"],
    page=Page(SessionPage, "List sessions, newest first",
              lambda owner, limit, cursor: tutor().list_sessions(owner, limit=limit, cursor=cursor)),
    read=Read(SessionDetail, "A session with its messages in order",
              lambda owner, session_id: tutor().session_detail(owner, session_id)),
    delete=Delete("Delete a session and everything under it",
                  lambda owner, session_id: tutor().delete_session(owner, session_id)))


@app.post("/sessions/<sessionId>/end", summary="End a session (idempotent)", tags=["Tutor"])
def end_session(sessionId: str) -> Session:  # noqa: N803
    return tutor().end_session(owner_of(app), sessionId)


handler = rest_handler(app)
