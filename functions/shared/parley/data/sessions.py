"""The sessions aggregate: a tutor session, its messages, the markers that make saves idempotent,
and the client's own id for it.

    session     PK=<owner>  SK=SESSION#<startedAt>#<sessionId>#META  GSI1PK=SESSION#<sessionId> GSI1SK=META
    message     PK=<owner>  SK=SESSION#<sessionId>#MSG#<createdAt>    GSI1SK=MSG#<createdAt>
    marker      PK=<owner>  SK=SESSION#<sessionId>#MSGID#<messageId>  (the message a client messageId saved)
    client id   PK=<owner>  SK=CLIENTSESSION#<clientSessionId>      (the session it started)

A message is appended in one transaction with the session's counters, conditional on the count
that was read, so two concurrent saves never share a turn; a False return means "someone else
wrote meanwhile: read again".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from parley.data import keys
from parley.data.store import Listing, Page, Repository


class SessionRecords(Repository):
    # -- sessions ----------------------------------------------------------------------------
    def meta(self, owner: str, session_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.session_meta_sk(session_id))

    def client_alias(self, owner: str, client_session_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.client_session_sk(client_session_id))

    def create(self, item: dict[str, Any]) -> None:
        self.store.put(item, ConditionExpression=Attr("SK").not_exists())

    def create_with_client_id(self, item: dict[str, Any], client_session_id: str, *,
                              stale_session_id: str | None) -> bool:
        """The session and its client id's item in one transaction. The client id's item is new, or
        (when its session is gone) taken over from exactly ``stale_session_id``. False when a
        concurrent request claimed the client id first."""
        claim: dict[str, Any] = (
            {"ConditionExpression": "sessionId = :stale", "ExpressionAttributeValues": {":stale": stale_session_id}}
            if stale_session_id is not None else {"ConditionExpression": "attribute_not_exists(SK)"})
        return self.store.transacted_if([
            {"Put": {"Item": {"PK": item["PK"], "SK": keys.client_session_sk(client_session_id),
                              "type": "CLIENT_SESSION_ID", "sessionId": item["sessionId"],
                              "expiresAt": item["expiresAt"]},
                     **claim}},
            {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(SK)"}},
        ])

    def page(self, owner: str, *, limit: int, cursor: str | None = None, paged: bool = True) -> Page:
        """The owner's sessions, newest first. ``paged=False``: no cursor (one page only)."""
        low, high = keys.SESSION_META_RANGE
        listing = Listing("sessions", exact={"PK": owner}, ranges={"SK": (low, high)}) if paged else None
        return self.store.query_page(key=Key("PK").eq(owner) & Key("SK").between(low, high), limit=limit,
                                     forward=False, listing=listing, cursor=cursor)

    def end(self, owner: str, meta_sk: str, *, now: str, duration: int) -> dict[str, Any] | None:
        """active -> completed; the new item, or None when it had ended (or gone) meanwhile."""
        return self.store.updated_if(
            Key={"PK": owner, "SK": meta_sk},
            UpdateExpression="SET #st = :done, endedAt = :now, #dur = :dur",
            ConditionExpression="attribute_exists(PK) AND #st = :active",
            ExpressionAttributeNames={"#st": "status", "#dur": "duration"},
            ExpressionAttributeValues={":done": "completed", ":active": "active", ":now": now, ":dur": duration})

    def delete(self, owner: str, meta: dict[str, Any]) -> int:
        """The session and everything under it, children first and the session's own item last (an
        interrupted delete can be retried). Returns how many items were removed."""
        session_id = meta["sessionId"]
        children = list(self.store.keys_with_prefix(owner, keys.session_children_prefix(session_id)))
        if meta.get("clientSessionId"):
            children.append({"PK": owner, "SK": keys.client_session_sk(meta["clientSessionId"])})
        self.store.delete_keys(children)
        self.store.delete(owner, meta["SK"])
        return len(children) + 1

    def transcript_sort_keys(self, owner: str, session_id: str) -> list[str]:
        return [k["SK"] for k in self.store.keys_with_prefix(owner, keys.session_transcripts_prefix(session_id))]

    def transcripts(self, owner: str, session_id: str) -> Iterator[dict[str, Any]]:
        return self.store.query_all(
            key=Key("PK").eq(owner) & Key("SK").begins_with(keys.session_transcripts_prefix(session_id)))

    # -- messages ----------------------------------------------------------------------------
    def messages(self, owner: str, session_id: str, *, turns_only: bool = False) -> Iterator[dict[str, Any]]:
        """The session's messages in order, from the base table (strongly consistent);
        ``turns_only``: just role and content."""
        projection: dict[str, Any] = (
            {"ProjectionExpression": "#r, content", "ExpressionAttributeNames": {"#r": "role"}} if turns_only else {})
        return self.store.query_all(
            key=Key("PK").eq(owner) & Key("SK").begins_with(keys.message_sk(session_id, "")), **projection)

    def messages_by_index(self, owner: str, session_id: str) -> Iterator[dict[str, Any]]:
        """The session's messages in order, through GSI1 (eventually consistent)."""
        return self.store.query_all(
            index=keys.GSI1,
            key=Key("GSI1PK").eq(keys.session_gsi1pk(session_id)) & Key("GSI1SK").begins_with("MSG#"),
            FilterExpression=Attr("PK").eq(owner),
        )

    def message(self, owner: str, session_id: str, created_at: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.message_sk(session_id, created_at))

    def replayed(self, owner: str, session_id: str, message_id: str) -> dict[str, Any] | None:
        """The message a client ``messageId`` saved before, if any."""
        marker = self.store.get(owner, keys.message_marker_sk(session_id, message_id))
        return self.store.get(owner, marker["messageSK"]) if marker else None

    def append(self, owner: str, meta: dict[str, Any], item: dict[str, Any], *, message_id: str | None,
               expires: int, turns: int, words: int) -> bool:
        """Save message ``item`` and advance the session's counters in one transaction, conditional
        on the session being active with the message count of ``meta``; with the client's
        ``message_id``, its marker too. False when another writer changed the session meanwhile."""
        session_id = item["sessionId"]
        seen = int(meta.get("messageCount", 0))
        ops: list[dict[str, Any]] = [
            {"Update": {
                "Key": {"PK": owner, "SK": meta["SK"]},
                "UpdateExpression": "SET messageCount = :next, lastMessageAt = :at, expiresAt = :exp "
                                    "ADD turnCount :turns, wordCount :words",
                "ConditionExpression": "attribute_exists(PK) AND #st = :active AND messageCount = :seen",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": {
                    ":next": seen + 1, ":seen": seen, ":at": item["createdAt"], ":exp": expires,
                    ":active": "active", ":turns": turns, ":words": words,
                },
            }},
            {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(SK)"}},
        ]
        if message_id:
            ops.append({"Put": {
                "Item": {"PK": owner, "SK": keys.message_marker_sk(session_id, message_id),
                         "GSI1PK": keys.session_gsi1pk(session_id), "GSI1SK": f"MSGID#{message_id}",
                         "type": "MESSAGE_ID", "messageSK": item["SK"], "expiresAt": expires},
                "ConditionExpression": "attribute_not_exists(SK)",
            }})
        if meta.get("clientSessionId"):  # the client's id lives as long as the session it names
            ops.append({"Update": {
                "Key": {"PK": owner, "SK": keys.client_session_sk(meta["clientSessionId"])},
                "UpdateExpression": "SET expiresAt = :exp, sessionId = :sid, #t = :type",
                "ExpressionAttributeNames": {"#t": "type"},
                "ExpressionAttributeValues": {":exp": expires, ":sid": session_id, ":type": "CLIENT_SESSION_ID"},
            }})
        return self.store.transacted_if(ops)
