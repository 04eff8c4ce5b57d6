"""DynamoDB requests made by DELETE /sessions/{id} for 10, 100 and 1,000 messages.

Counted by the Store (every GetItem, Query page, BatchWriteItem and DeleteItem), on moto, against
the target ceil(N/25) + ceil(N/page) + 2 where page is the number of keys one Query page returns.
"""

from __future__ import annotations

import math

from bench.emulated import emulated_table
from bench.registry import benchmark, print_table

SIZES = (10, 100, 1000)


def measure() -> list[tuple[int, int, int, int]]:
    """[(messages, requests, query pages, target)]."""
    from parley.core.ids import iso_micros, new_ulid, utcnow
    from parley.data import keys
    from parley.data.store import Store
    from parley.tutor.models import StartSession
    from parley.tutor.service import Tutor

    rows = []
    with emulated_table() as table:
        for size in SIZES:
            store = Store(table)
            tutor = Tutor(store, retention_days=90)
            owner = f"DEVICE#bench-{size}"
            session, _ = tutor.start_session(owner, StartSession())
            with table.batch_writer() as batch:  # seed the messages directly: we measure the delete
                for n in range(size):
                    at = iso_micros(utcnow())[:-7] + f"{n:06d}Z"
                    batch.put_item(Item={
                        "PK": owner, "SK": keys.message_sk(session.session_id, at),
                        "GSI1PK": keys.session_gsi1pk(session.session_id), "GSI1SK": f"MSG#{at}",
                        "type": "MESSAGE", "messageId": new_ulid(), "role": "user", "turnNumber": n,
                        "content": "A typical learner sentence about going to the market last weekend.",
                        "createdAt": at})
            store.calls.clear()
            tutor.delete_session(owner, session.session_id)
            pages = store.calls["Query"]
            rows.append((size, store.requests, pages, math.ceil(size / 25) + pages + 2))
    return rows


@benchmark("delete-requests", "DynamoDB requests of DELETE /sessions/{id} for 10, 100, 1000 messages")
def delete_requests(runs: int) -> None:
    print_table(("messages", "requests", "ceil(N/25)", "query pages", "target", ""),
                [(size, requests, math.ceil(size / 25), pages, target, "met" if requests <= target else "MISSED")
                 for size, requests, pages, target in measure()], left=0)
    print("  target: ceil(N/25) batch writes + ceil(N/page) query pages (1 MB pages) + 2 (session get and delete)")
