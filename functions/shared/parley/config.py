"""Each function's environment as a pydantic model, validated once at cold start.

Handlers call ``SomeEnv.load(os.environ)``; this package never reads the environment itself.
A missing or malformed variable fails the cold start with a message naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class _Env(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @classmethod
    def load(cls, environ: Mapping[str, str]) -> Self:
        return cls.model_validate(dict(environ))


class ApiEnv(_Env):
    """What every API function needs."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    cors_allow_origin: str = Field(alias="CORS_ALLOW_ORIGIN", min_length=1)
    data_retention_days: int = Field(90, alias="DATA_RETENTION_DAYS", ge=1, le=3650)
    max_body_bytes: int = Field(64 * 1024, alias="MAX_BODY_BYTES", ge=1024, le=10 * 1024 * 1024)


class AuthorizerEnv(_Env):
    auth_mode: str = Field(alias="AUTH_MODE", pattern="^(cognito|device)$")
    user_pool_id: str = Field("", alias="USER_POOL_ID")
    user_pool_client_id: str = Field("", alias="USER_POOL_CLIENT_ID")
    region: str = Field("us-east-1", alias="AWS_REGION")
