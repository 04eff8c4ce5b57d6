"""POST /sessions/{sessionId}/messages: save one message (idempotent with a client messageId)."""

from __future__ import annotations

import os

from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import ApiEnv
from parley.data.store import Store
from parley.tutor.models import Message, NewMessage
from parley.tutor.service import Tutor

ENV = ApiEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


@app.post("/sessions/<sessionId>/messages", summary="Save a message in a session", tags=["Tutor"],
          responses={
              201: {"description": "Saved", "content": {"application/json": {"model": Message}}},
              200: {"description": "Already saved under this messageId; the first save is returned"},
          })
def save_message(sessionId: str, body: NewMessage) -> tuple[Message, int]:  # noqa: N803
    tutor = Tutor(Store(clients.table(ENV.table_name)), retention_days=ENV.data_retention_days)
    message, created = tutor.add_message(owner_of(app), sessionId, body)
    return message, 201 if created else 200


handler = rest_handler(app)
