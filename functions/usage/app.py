"""GET /usage - the owner's usage for a month: totals, cost, per-day per-engine, quota left."""

from __future__ import annotations

import os
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import UsageApiEnv
from parley.core.ids import utcnow
from parley.data.store import Store
from parley.usage.ledger import UsageLedger, UsageReport
from parley.usage.quota import guard_from, month_of

ENV = UsageApiEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)
MONTH_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])$"  # 2000-2999: years a usage total can exist for


@app.get("/usage", summary="Usage, estimated cost and remaining quota for a month", tags=["Usage"])
def get_usage(
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM (UTC); default this month")] = None,
) -> UsageReport:
    store = Store(clients.table(ENV.table_name))
    return UsageLedger(store).report(owner_of(app), month or month_of(utcnow()), guard_from(ENV, store))


handler = rest_handler(app)
