"""The speaking tutor's data plane (seed 000): settings, sessions and messages for one owner.

Every method takes the owner from the caller (who got it from the authorizer) and only ever
touches items under that owner's partition, so another owner's session is simply not found.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from parley.core.errors import Conflict, NotFound, ServiceUnavailable
from parley.core.ids import is_ulid, iso_micros, new_ulid, parse_iso, utcnow
from parley.core.models import CLIENT_ID_PATTERN
from parley.data import keys
from parley.data.sessions import SessionRecords
from parley.data.settings import SettingsRecords
from parley.data.store import Store
from parley.tutor.models import (
    Message,
    NewMessage,
    Session,
    SessionDetail,
    SessionPage,
    Settings,
    SettingsOut,
    StartSession,
)

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_SAVE_ATTEMPTS = 4


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _session_from_item(item: dict[str, Any]) -> Session:
    return Session(
        session_id=item["sessionId"], client_session_id=item.get("clientSessionId"), tutor_name=item["tutorName"],
        topic=item["topic"], accent=item["accent"],
        level=item["level"], gender=item["gender"], status=item["status"], started_at=item["startedAt"],
        ended_at=item.get("endedAt"), duration=int(item["duration"]) if "duration" in item else None,
        turn_count=int(item.get("turnCount", 0)), word_count=int(item.get("wordCount", 0)),
        last_message_at=item.get("lastMessageAt"),
    )


def _message_from_item(item: dict[str, Any]) -> Message:
    return Message(
        message_id=item["messageId"], role=item["role"], content=item["content"],
        translation=item.get("translation"), turn_number=int(item["turnNumber"]), created_at=item["createdAt"],
    )


class Tutor:
    def __init__(self, store: Store, *, retention_days: int) -> None:
        self.store = store
        self.sessions = SessionRecords(store)
        self.settings = SettingsRecords(store)
        self.retention = timedelta(days=retention_days)

    def _expires_at(self) -> int:
        return int((utcnow() + self.retention).timestamp())

    # -- settings ----------------------------------------------------------------------------
    def get_settings(self, owner: str) -> SettingsOut:
        item = self.settings.get(owner)
        if not item:
            return SettingsOut()
        return SettingsOut(**item["settings"], updated_at=item.get("updatedAt"))

    def put_settings(self, owner: str, settings: Settings) -> SettingsOut:
        now = iso_micros(utcnow())
        self.settings.put(owner, settings.model_dump(mode="json"), now=now)
        return SettingsOut(**settings.model_dump(), updated_at=now)

    # -- sessions ----------------------------------------------------------------------------
    def start_session(self, owner: str, request: StartSession) -> tuple[Session, bool]:
        """Start a session; returns (session, created). With a ``clientSessionId`` already used by
        this owner, the session started then is returned with created=False and nothing changes."""
        alias = self.sessions.client_alias(owner, request.client_session_id) if request.client_session_id else None
        if alias and (existing := self._aliased(owner, alias)):
            return existing, False
        saved = self.get_settings(owner)
        session_id = new_ulid()
        started_at = keys.session_started_at(session_id)
        session = Session(
            session_id=session_id,
            client_session_id=request.client_session_id,
            tutor_name=request.tutor_name or saved.tutor_name,
            topic=request.topic or saved.topic,
            accent=request.accent or saved.accent,
            level=request.level or saved.level,
            gender=request.gender or saved.gender,
            status="active",
            started_at=started_at,
        )
        item = {
            "PK": owner, "SK": keys.session_meta_sk(session_id),
            "GSI1PK": keys.session_gsi1pk(session_id), "GSI1SK": "META", "type": "SESSION_META",
            **session.model_dump(by_alias=True, exclude_none=True),
            "messageCount": 0, "expiresAt": self._expires_at(),
        }
        if not request.client_session_id:
            self.sessions.create(item)
            return session, True
        # The client id's item is new, or (when its session is gone: deleted meanwhile, or expired
        # first) taken over from exactly the stale session it named.
        if not self.sessions.create_with_client_id(item, request.client_session_id,
                                                   stale_session_id=alias["sessionId"] if alias else None):
            # A concurrent request started this client id first: its session is the one.
            alias = self.sessions.client_alias(owner, request.client_session_id)
            if alias and (existing := self._aliased(owner, alias)):
                return existing, False
            raise ServiceUnavailable("The session is being started by another request; retry.",
                                     headers={"Retry-After": "1"})
        return session, True

    def _aliased(self, owner: str, alias: dict[str, Any]) -> Session | None:
        """The session a client id's item names, or None when that session no longer exists."""
        meta = self.sessions.meta(owner, alias["sessionId"])
        return _session_from_item(meta) if meta else None

    def resolve_session_id(self, owner: str, session_id: str) -> str:
        """Parley's id for ``session_id``, which may be Parley's own id or the client's
        ``clientSessionId``; NotFound when it is neither for this owner."""
        if is_ulid(session_id) and self.sessions.meta(owner, session_id):
            return session_id
        if re.fullmatch(CLIENT_ID_PATTERN, session_id) and (alias := self.sessions.client_alias(owner, session_id)) \
                and (found := self._aliased(owner, alias)):
            return found.session_id
        raise NotFound(f"Session {session_id!r} was not found.")

    def _meta(self, owner: str, session_id: str) -> dict[str, Any]:
        item = self.sessions.meta(owner, session_id) if is_ulid(session_id) else None
        if not item:
            raise NotFound(f"Session {session_id!r} was not found.")
        return item

    def get_session(self, owner: str, session_id: str) -> Session:
        return _session_from_item(self._meta(owner, session_id))

    def list_sessions(self, owner: str, *, limit: int, cursor: str | None) -> SessionPage:
        page = self.sessions.page(owner, limit=limit, cursor=cursor)
        return SessionPage(items=[_session_from_item(i) for i in page.items], next_cursor=page.cursor)

    def session_detail(self, owner: str, session_id: str) -> SessionDetail:
        session = self.get_session(owner, session_id)
        items = self.sessions.messages_by_index(owner, session_id)
        return SessionDetail(**session.model_dump(), messages=[_message_from_item(i) for i in items])

    def history(self, owner: str, session_id: str) -> list[Message]:
        """The session's messages in order, read from the base table (strongly consistent)."""
        self._meta(owner, session_id)
        return [_message_from_item(i) for i in self.sessions.messages(owner, session_id)]

    def end_session(self, owner: str, session_id: str) -> Session:
        meta = self._meta(owner, session_id)
        if meta["status"] == "completed":
            return _session_from_item(meta)
        now = utcnow()
        duration = max(0, int((now - parse_iso(meta["startedAt"])).total_seconds()))
        ended = self.sessions.end(owner, meta["SK"], now=iso_micros(now), duration=duration)
        if ended is None:
            return _session_from_item(self._meta(owner, session_id))  # ended (or deleted) meanwhile
        return _session_from_item(ended)

    def delete_session(self, owner: str, session_id: str) -> int:
        """Delete the session and everything under it; returns how many items were removed.

        Children go first and the session's own item last, so an interrupted delete can simply
        be retried: the session is still there to be found until everything under it is gone.
        """
        return self.sessions.delete(owner, self._meta(owner, session_id))

    # -- messages ----------------------------------------------------------------------------
    def add_message(self, owner: str, session_id: str, new: NewMessage,
                    origin: dict[str, str] | None = None) -> tuple[Message, bool]:
        """Append a message; returns (message, created). A repeated client ``messageId`` returns
        the message saved the first time, with created=False, and changes nothing. ``origin`` (the
        engine and model of a tutor's reply) is kept on the item, for a replayed answer."""
        for _ in range(_SAVE_ATTEMPTS):
            meta = self._meta(owner, session_id)
            if new.message_id and (existing := self._replay(owner, session_id, new.message_id)):
                return existing, False
            if meta["status"] != "active":
                raise Conflict(f"Session {session_id!r} has ended; start a new session to add messages.")
            message = self._next_message(meta, new)
            if self._write_message(owner, session_id, meta, new, message, origin or {}):
                return message, True
            # Someone else wrote meanwhile (a concurrent save, an end, a replay): look again.
        raise ServiceUnavailable("The session is being changed by another request; retry the save.",
                                 headers={"Retry-After": "1"})

    def reply_origin(self, owner: str, session_id: str, message: Message) -> dict[str, str | None]:
        """The engine and model that wrote a saved reply (None for replies saved without them)."""
        item = self.sessions.message(owner, session_id, message.created_at) or {}
        return {"engine": item.get("originEngine"), "model": item.get("originModel")}

    def _replay(self, owner: str, session_id: str, message_id: str) -> Message | None:
        item = self.sessions.replayed(owner, session_id, message_id)
        return _message_from_item(item) if item else None

    def _next_message(self, meta: dict[str, Any], new: NewMessage) -> Message:
        now = utcnow()
        last = meta.get("lastMessageAt")
        if last and parse_iso(last) >= now:  # keep sort keys strictly increasing
            now = parse_iso(last) + timedelta(microseconds=1)
        turns = int(meta.get("turnCount", 0)) + (1 if new.role == "user" else 0)
        return Message(
            message_id=new.message_id or new_ulid(int(now.timestamp() * 1000)), role=new.role,
            content=new.content, translation=new.translation,
            turn_number=new.turn_number if new.turn_number is not None else turns,
            created_at=iso_micros(now),
        )

    def _write_message(self, owner: str, session_id: str, meta: dict[str, Any], new: NewMessage,
                       message: Message, origin: dict[str, str]) -> bool:
        expires = self._expires_at()
        item = {
            "PK": owner, "SK": keys.message_sk(session_id, message.created_at),
            "GSI1PK": keys.session_gsi1pk(session_id), "GSI1SK": f"MSG#{message.created_at}",
            "type": "MESSAGE", "sessionId": session_id, **message.model_dump(by_alias=True, exclude_none=True),
            **{f"origin{k.capitalize()}": v for k, v in origin.items()}, "expiresAt": expires,
        }
        user = message.role == "user"
        return self.sessions.append(owner, meta, item, message_id=new.message_id, expires=expires,
                                    turns=1 if user else 0, words=count_words(message.content) if user else 0)
