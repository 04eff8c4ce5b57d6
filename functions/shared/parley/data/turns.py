"""Who is answering a streamed turn right now: one claim per learner message (``messageId``).

A client that reconnects mid-turn and sends the same turn again must not get a second, different
reply from the model while the first invocation is still writing (and will save) the first one. The
first invocation claims the turn (a conditional put, with a TTL just past the time a turn may take);
a resend that finds the claim waits for it to go, then replays the saved reply. A claim left by an
invocation that died expires on its own.

Item: ``PK=<owner>, SK=SESSION#<sessionId>#TURNCLAIM#<messageId>`` - under the session, so deleting
the session deletes it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from parley.data import keys
from parley.data.store import Repository, Store, error_code


class TurnClaims(Repository):
    def __init__(self, store: Store, *, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        super().__init__(store)
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    @staticmethod
    def _sk(session_id: str, message_id: str) -> str:
        return keys.session_child_sk(session_id, "TURNCLAIM", message_id)

    def claim(self, owner: str, session_id: str, message_id: str) -> bool:
        """True if this invocation now answers the turn; False while another one does."""
        now = self.clock()
        try:
            self.store.put({"PK": owner, "SK": self._sk(session_id, message_id), "type": "TURN_CLAIM",
                            "expiresAt": int(now + self.ttl_seconds) + 1},
                           ConditionExpression="attribute_not_exists(SK) OR expiresAt < :now",
                           ExpressionAttributeValues={":now": int(now)})
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def release(self, owner: str, session_id: str, message_id: str) -> None:
        self.store.delete(owner, self._sk(session_id, message_id))
