"""Domain exceptions. ``parley.api`` maps each to an HTTP status and one stable error body:

    {"error": {"code": "NOT_FOUND", "message": "...", "details": [...]}}

Step Functions tasks raise these by name, and the state machines Retry/Catch on the class name.
"""

from __future__ import annotations

from typing import Any


class ParleyError(Exception):
    """Base class: an error with a stable machine-readable code and an HTTP status."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}


class BadRequest(ParleyError):
    status = 400
    code = "BAD_REQUEST"


class Unauthorized(ParleyError):
    status = 401
    code = "UNAUTHORIZED"


class NotFound(ParleyError):
    status = 404
    code = "NOT_FOUND"


class Conflict(ParleyError):
    status = 409
    code = "CONFLICT"


class PayloadTooLarge(ParleyError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnprocessableEntity(ParleyError):
    status = 422
    code = "UNPROCESSABLE"


class QuotaExceeded(ParleyError):
    status = 429
    code = "QUOTA_EXCEEDED"


class ServiceUnavailable(ParleyError):
    """A dependency failed after retries (DynamoDB throttling, a provider down...)."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
