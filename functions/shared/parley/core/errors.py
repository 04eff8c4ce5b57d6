"""Domain exceptions. ``parley.core.api`` maps each to an HTTP status and one stable error body:

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


class UnsupportedMediaType(ParleyError):
    """A body in a media type the endpoint does not take (non-JSON, or audio in another format)."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


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


class MalformedUsageEvent(ParleyError):
    """A usage event the recorder cannot count (wrong envelope or detail). Raised so EventBridge /
    Lambda retry it and it ends in the usage DLQ, never half-applied."""

    status = 400
    code = "MALFORMED_USAGE_EVENT"


# -- proofreading ---------------------------------------------------------------------------------
class PromptBudgetExceeded(UnprocessableEntity):
    """A prompt's text and files would not fit the system-prompt budget (details say by how much)."""

    code = "PROMPT_BUDGET_EXCEEDED"


class InvalidModelOutput(ParleyError):
    """The model's structured answer failed validation even after the one retry it gets
    (proofreading corrections, analysis reports). Step Functions catch it by this name."""

    status = 502
    code = "AI_OUTPUT_INVALID"


class AnalysisSuperseded(ParleyError):
    """A newer analysis of the same session was started (or the session was deleted) while this
    one ran: its result is not saved over the newer one."""

    status = 409
    code = "ANALYSIS_SUPERSEDED"


class NotEnoughToAnalyse(UnprocessableEntity):
    """Too few learner turns for a meaningful analysis; refused before anything runs or bills."""

    code = "NOT_ENOUGH_TO_ANALYSE"
