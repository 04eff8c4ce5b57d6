"""The base of every API model, and the value types more than one domain shares.

JSON is camelCase; unknown fields are refused (a typo must not be silently ignored). Enum values
are accepted in any letter case and answered in one spelling (``spelled_any_case``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"  # an id a client chose: a UUID, a ULID, a slug
ClientId = Annotated[str, StringConstraints(pattern=CLIENT_ID_PATTERN)]


def spelled_any_case(*values: str) -> BeforeValidator:
    """Accept any letter case of ``values`` (the original backend's ``us``, ``Advanced``,
    ``Business`` ...) and keep the one documented spelling: every answer shows that one."""
    canonical = {value.lower(): value for value in values}

    def normalise(given: Any) -> Any:
        return canonical.get(given.strip().lower(), given) if isinstance(given, str) else given

    return BeforeValidator(normalise)


class ApiModel(BaseModel):
    # defer_build: a model's validator is built on first use, so a function does not pay at cold
    # start for the models of the other functions that share its modules.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True)
