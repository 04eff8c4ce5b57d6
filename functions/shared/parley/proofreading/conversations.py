"""Conversation history (seed 003's ``conversations`` table): every proofreading or chat exchange,
stored per owner, listed newest first, filterable by the engine that answered.

A conversation is a summary item plus one item per exchange. An exchange is written in one
transaction with the summary's update, and only once the answer is complete and validated, so a
failed or interrupted answer leaves nothing half-saved.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from parley.core.errors import NotFound, ServiceUnavailable
from parley.core.ids import is_ulid, iso_micros, new_ulid, utcnow
from parley.data import keys
from parley.data.conversations import ConversationRecords
from parley.data.store import Store
from parley.proofreading.models import (
    ConversationDetail,
    ConversationPage,
    ConversationSummary,
    Correction,
    Exchange,
    Mode,
    Usage,
)

TITLE_CHARS = 80
_SAVE_ATTEMPTS = 4


def title_of(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def _summary(item: dict[str, Any]) -> ConversationSummary:
    return ConversationSummary(
        conversation_id=item["conversationId"], title=item["title"], mode=item["mode"], engine=item["engine"],
        model=item["model"], prompt_id=item.get("promptId"), turn_count=int(item["turnCount"]),
        created_at=item["createdAt"], updated_at=item["updatedAt"],
    )


def _exchange(item: dict[str, Any]) -> Exchange:
    corrections = item.get("corrections")
    return Exchange(
        turn=int(item["turn"]), mode=item["mode"], input=item["input"], output=item["output"],
        corrections=[Correction.model_validate(c) for c in corrections] if corrections is not None else None,
        engine=item["engine"], model=item["model"], usage=Usage.model_validate(item.get("usage", {})),
        created_at=item["createdAt"],
    )


class Conversations:
    def __init__(self, store: Store, *, retention_days: int) -> None:
        self.store = store
        self.records = ConversationRecords(store)
        self.retention = timedelta(days=retention_days)

    def _meta(self, owner: str, conversation_id: str) -> dict[str, Any]:
        item = self.records.get(owner, conversation_id) if is_ulid(conversation_id) else None
        if not item:
            raise NotFound(f"Conversation {conversation_id!r} was not found.")
        return item

    def ensure_exists(self, owner: str, conversation_id: str | None) -> None:
        """Fail early (before any model call) when the request names a conversation that is not there."""
        if conversation_id is not None:
            self._meta(owner, conversation_id)

    def page(self, owner: str, *, limit: int, cursor: str | None, engine: str | None = None) -> ConversationPage:
        page = self.records.page(owner, limit=limit, cursor=cursor, engine=engine)
        return ConversationPage(items=[_summary(i) for i in page.items], next_cursor=page.cursor)

    def _exchanges(self, owner: str, conversation_id: str) -> list[Exchange]:
        return [_exchange(i) for i in self.records.exchanges(owner, conversation_id)]

    def exchange(self, owner: str, conversation_id: str, turn: int) -> Exchange | None:
        """One saved exchange (None once deleted or expired): what a replayed WebSocket answer reads."""
        item = self.records.exchange(owner, conversation_id, turn)
        return _exchange(item) if item else None

    def get(self, owner: str, conversation_id: str) -> ConversationDetail:
        meta = self._meta(owner, conversation_id)
        return ConversationDetail(**_summary(meta).model_dump(), exchanges=self._exchanges(owner, conversation_id))

    def history(self, owner: str, conversation_id: str | None, *, max_turns: int = 10) -> list[Exchange]:
        """The latest exchanges, oldest first (for a chat's context)."""
        if conversation_id is None:
            return []
        self._meta(owner, conversation_id)
        return self._exchanges(owner, conversation_id)[-max_turns:]

    def delete(self, owner: str, conversation_id: str) -> int:
        self._meta(owner, conversation_id)
        return self.records.delete(owner, conversation_id)

    def record(self, owner: str, conversation_id: str | None, *, mode: Mode, prompt_id: str | None, text: str,
               output: str, corrections: list[Correction] | None, engine: str, model: str,
               usage: Usage) -> tuple[str, int]:
        """Save one complete exchange; returns (conversationId, turn). New conversation when id is None."""
        for _ in range(_SAVE_ATTEMPTS):
            now = utcnow()
            expires = int((now + self.retention).timestamp())
            at = iso_micros(now)
            if conversation_id is None:
                new_id, turn, meta = new_ulid(), 1, None
            else:
                meta = self._meta(owner, conversation_id)
                new_id, turn = conversation_id, int(meta["turnCount"]) + 1
            exchange = {
                "PK": owner, "SK": keys.conversation_turn_sk(new_id, turn), "type": "CONVERSATION_TURN",
                "conversationId": new_id, "turn": turn, "mode": mode, "input": text, "output": output,
                "engine": engine, "model": model, "usage": usage.model_dump(by_alias=True), "createdAt": at,
                "expiresAt": expires,
            }
            if corrections is not None:
                exchange["corrections"] = [c.model_dump(by_alias=True) for c in corrections]
            summary = None if meta is not None else {
                "PK": owner, "SK": keys.conversation_sk(new_id),
                "GSI1PK": keys.conversation_engine_gsi1pk(owner, engine), "GSI1SK": keys.conversation_sk(new_id),
                "type": "CONVERSATION", "conversationId": new_id,
                "title": title_of(text), "mode": mode, "engine": engine, "model": model,
                **({"promptId": prompt_id} if prompt_id else {}), "turnCount": 1, "createdAt": at,
                "updatedAt": at, "expiresAt": expires,
            }
            if self.records.append(owner, exchange, summary=summary, at=at, expires=expires):
                return new_id, turn
            # another exchange was saved to this conversation meanwhile: take the next turn
        raise ServiceUnavailable("The conversation is being changed by another request; retry.",
                                 headers={"Retry-After": "1"})
