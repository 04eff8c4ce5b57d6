"""The conversations aggregate: a proofreading conversation's summary and its exchanges.

    summary   PK=<owner>  SK=CONV#<id>  GSI1PK=CONVENGINE#<owner>#<engine>  GSI1SK=CONV#<id>
              (title, mode, engine, model, promptId, turnCount, timestamps)
    exchange  PK=<owner>  SK=CONVTURN#<id>#<turn, 5 digits>  (input, output, corrections, usage)
 An exchange is written in one transaction with the summary,
conditional on the turn count that was read: two concurrent saves never share a turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from parley.data import keys
from parley.data.store import Listing, Page, Repository, error_code


class ConversationRecords(Repository):
    def get(self, owner: str, conversation_id: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.conversation_sk(conversation_id))

    def page(self, owner: str, *, limit: int, cursor: str | None, engine: str | None = None) -> Page:
        """The owner's conversations, newest first; with ``engine``, those it answered (through GSI1)."""
        conversations = (keys.CONVERSATION_PREFIX, keys.CONVERSATION_PREFIX + "~")
        if engine:
            index = keys.conversation_engine_gsi1pk(owner, engine)
            listing = Listing(f"conversations?engine={engine}", exact={"PK": owner, "GSI1PK": index},
                              ranges={"SK": conversations, "GSI1SK": conversations})
            return self.store.query_page(index=keys.GSI1, key=Key("GSI1PK").eq(index), limit=limit,
                                         listing=listing, cursor=cursor, forward=False)
        listing = Listing("conversations", exact={"PK": owner}, ranges={"SK": conversations})
        return self.store.query_page(key=Key("PK").eq(owner) & Key("SK").begins_with(keys.CONVERSATION_PREFIX),
                                     limit=limit, listing=listing, cursor=cursor, forward=False)

    def exchanges(self, owner: str, conversation_id: str) -> Iterator[dict[str, Any]]:
        return self.store.query_all(
            key=Key("PK").eq(owner) & Key("SK").begins_with(keys.conversation_turn_prefix(conversation_id)))

    def exchange(self, owner: str, conversation_id: str, turn: int) -> dict[str, Any] | None:
        return self.store.get(owner, keys.conversation_turn_sk(conversation_id, turn))

    def delete(self, owner: str, conversation_id: str) -> int:
        """The exchanges, then the summary; returns how many items were removed."""
        turns = list(self.store.keys_with_prefix(owner, keys.conversation_turn_prefix(conversation_id)))
        self.store.delete_keys(turns)
        self.store.delete(owner, keys.conversation_sk(conversation_id))
        return len(turns) + 1

    def append(self, owner: str, exchange: dict[str, Any], *, summary: dict[str, Any] | None, at: str,
               expires: int) -> bool:
        """Save ``exchange`` (its ``turn`` the next one): with ``summary``, a new conversation; else
        the existing summary's turnCount moves on, if it is still the turn before. False when another
        exchange was saved meanwhile."""
        turn = int(exchange["turn"])
        if summary is not None:
            head: dict[str, Any] = {"Put": {"Item": summary, "ConditionExpression": "attribute_not_exists(SK)"}}
        else:
            head = {"Update": {
                "Key": {"PK": owner, "SK": keys.conversation_sk(exchange["conversationId"])},
                "UpdateExpression": "SET turnCount = :turn, updatedAt = :at, expiresAt = :exp",
                "ConditionExpression": "attribute_exists(SK) AND turnCount = :seen",
                "ExpressionAttributeValues": {":turn": turn, ":seen": turn - 1, ":at": at, ":exp": expires},
            }}
        try:
            self.store.transact([head, {"Put": {"Item": exchange, "ConditionExpression": "attribute_not_exists(SK)"}}])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True
