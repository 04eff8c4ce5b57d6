"""Proofreading conversation history (seed 003's conversation API): list, read, delete."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query

from parley.core import clients
from parley.core.api import PageCursor, PageLimit, make_resolver, owner_of, rest_handler
from parley.core.collection_routes import Delete, Read, collection_routes
from parley.core.config import ApiEnv
from parley.data.store import Store
from parley.proofreading.conversations import Conversations
from parley.proofreading.models import ConversationDetail, ConversationPage

ENV = ApiEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def conversations() -> Conversations:
    return Conversations(Store(clients.table(ENV.table_name)), retention_days=ENV.data_retention_days)


@app.get("/conversations", summary="List conversations, newest first", tags=["Proofreading"])
def list_conversations(
    limit: PageLimit = 20,
    cursor: PageCursor = None,
    engine: Annotated[Literal["anthropic", "bedrock", "offline"] | None,
                      Query(description="Only conversations answered by this engine")] = None,
) -> ConversationPage:
    return conversations().page(owner_of(app), limit=limit, cursor=cursor, engine=engine)


collection_routes(  # its page is the route above: it takes an engine too
    app, "/conversations", "conversationId", noun="conversation", tags=["Proofreading"],
    read=Read(ConversationDetail, "A conversation with its exchanges",
              lambda owner, conversation_id: conversations().get(owner, conversation_id)),
    delete=Delete("Delete a conversation", lambda owner, item_id: conversations().delete(owner, item_id)))


handler = rest_handler(app)
