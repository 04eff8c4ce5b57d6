"""The settings aggregate: one item per owner.

    settings  PK=<owner>  SK=SETTINGS  (settings: the saved tutor defaults, updatedAt)
"""

from __future__ import annotations

from typing import Any

from parley.data import keys
from parley.data.store import Repository


class SettingsRecords(Repository):
    def get(self, owner: str) -> dict[str, Any] | None:
        return self.store.get(owner, keys.SETTINGS_SK)

    def put(self, owner: str, settings: dict[str, Any], *, now: str) -> None:
        self.store.put({"PK": owner, "SK": keys.SETTINGS_SK, "type": "USER_SETTINGS", "settings": settings,
                        "updatedAt": now})
