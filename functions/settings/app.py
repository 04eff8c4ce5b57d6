"""GET /settings and PUT /settings: the learner's tutor preferences."""

from __future__ import annotations

import os

from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import ApiEnv
from parley.data.store import Store
from parley.tutor.models import Settings, SettingsOut
from parley.tutor.service import Tutor

ENV = ApiEnv.load(os.environ)
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def tutor() -> Tutor:
    return Tutor(Store(clients.table(ENV.table_name)), retention_days=ENV.data_retention_days)


@app.get("/settings", summary="Get the learner's settings (defaults when none are saved)", tags=["Tutor"])
def get_settings() -> SettingsOut:
    return tutor().get_settings(owner_of(app))


@app.put("/settings", summary="Replace the learner's settings", tags=["Tutor"])
def put_settings(body: Settings) -> SettingsOut:
    return tutor().put_settings(owner_of(app), body)


handler = rest_handler(app)
