"""Proofreading conversation history (seed 003's conversation API): list, read, delete."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from parley.core import clients
from parley.core.api import PageCursor, PageLimit, make_resolver, no_content, owner_of, rest_handler
from parley.core.config import ApiEnv
from parley.core.observability import logger
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


@app.get("/conversations/<conversationId>", summary="A conversation with its exchanges", tags=["Proofreading"])
def get_conversation(conversationId: str) -> ConversationDetail:  # noqa: N803 - the path parameter's public name
    return conversations().get(owner_of(app), conversationId)


@app.delete("/conversations/<conversationId>", summary="Delete a conversation", tags=["Proofreading"],
            responses={204: {"description": "Deleted"}})
def delete_conversation(conversationId: str) -> Response[str]:  # noqa: N803
    removed = conversations().delete(owner_of(app), conversationId)
    logger.info("Conversation deleted", extra={"conversation_id": conversationId, "items": removed})
    return no_content()


handler = rest_handler(app)
