"""Actions on the learner's settings: ``save_settings`` (PUT /settings) and ``get_settings`` (GET /settings)."""

from __future__ import annotations

from parley.actions.context import Answer, Call, Services
from parley.actions.replies import ActionSettingsOut, ActionSettingsReply
from parley.actions.requests import GetSettingsAction, SaveSettingsAction
from parley.tutor.models import Settings


def save_settings(services: Services, owner: str, request: SaveSettingsAction, _call: Call) -> Answer:
    """Merged over what is saved: the original backend's clients send only the values they change."""
    saved = services.tutor.get_settings(owner)
    merged = Settings(**{**saved.model_dump(exclude={"updated_at"}), **request.settings.overrides()})
    out = services.tutor.put_settings(owner, merged)
    return ActionSettingsReply(settings=ActionSettingsOut.of(out), is_default=False, updated_at=out.updated_at), 200


def get_settings(services: Services, owner: str, _request: GetSettingsAction, _call: Call) -> Answer:
    saved = services.tutor.get_settings(owner)
    return ActionSettingsReply(settings=ActionSettingsOut.of(saved), is_default=saved.updated_at is None,
                             updated_at=saved.updated_at), 200
