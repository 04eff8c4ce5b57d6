"""Domain exceptions. ``parley.core.api`` maps each to an HTTP status and one stable error body:

    {"error": {"code": "NOT_FOUND", "message": "...", "details": [...]}}

Step Functions tasks raise these by name, and the state machines Retry/Catch on the class name.
"""

from __future__ import annotations

from typing import Any


class ParleyError(Exception):
    """Base class: an error with a stable machine-readable code and an HTTP status. A subclass names
    both where it is declared: ``class NotFound(ParleyError, status=404, code="NOT_FOUND")``; one that
    leaves either out keeps its parent's."""

    status: int = 500
    code: str = "INTERNAL_ERROR"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}


class BadRequest(ParleyError, status=400, code="BAD_REQUEST"):
    """The request cannot be read as sent (malformed JSON, an unknown action, a bad cursor)."""


class Unauthorized(ParleyError, status=401, code="UNAUTHORIZED"):
    """No owner could be established for the request (missing or invalid credentials)."""


class NotFound(ParleyError, status=404, code="NOT_FOUND"):
    """The named item does not exist for this owner (another owner's item reads as missing too)."""


class Conflict(ParleyError, status=409, code="CONFLICT"):
    """The item's state does not allow the request (e.g. ending a session that is not open)."""


class PayloadTooLarge(ParleyError, status=413, code="PAYLOAD_TOO_LARGE"):
    """The body, or an upload it announces, is over the endpoint's limit."""


class UnsupportedMediaType(ParleyError, status=415, code="UNSUPPORTED_MEDIA_TYPE"):
    """A body in a media type the endpoint does not take (non-JSON, or audio in another format)."""


class UnprocessableEntity(ParleyError, status=422, code="UNPROCESSABLE"):
    """Well-formed, but a value breaks a rule (``details`` names each field)."""


class QuotaExceeded(ParleyError, status=429, code="QUOTA_EXCEEDED"):
    """The owner's monthly quota or a rate limit would be exceeded; nothing was billed."""


class ServiceUnavailable(ParleyError, status=503, code="SERVICE_UNAVAILABLE"):
    """A dependency failed after retries (DynamoDB throttling, a provider down...)."""


class MalformedUsageEvent(ParleyError, status=400, code="MALFORMED_USAGE_EVENT"):
    """A usage event the recorder cannot count (wrong envelope or detail). Raised so EventBridge /
    Lambda retry it and it ends in the usage DLQ, never half-applied."""


# -- proofreading ---------------------------------------------------------------------------------
class PromptBudgetExceeded(UnprocessableEntity, code="PROMPT_BUDGET_EXCEEDED"):
    """A prompt's text and files would not fit the system-prompt budget (details say by how much)."""


class InvalidModelOutput(ParleyError, status=502, code="AI_OUTPUT_INVALID"):
    """The model's structured answer failed validation even after the one retry it gets
    (proofreading corrections, analysis reports). Step Functions catch it by this name."""


class AnalysisSuperseded(ParleyError, status=409, code="ANALYSIS_SUPERSEDED"):
    """A newer analysis of the same session was started (or the session was deleted) while this
    one ran: its result is not saved over the newer one."""


class NotEnoughToAnalyse(UnprocessableEntity, code="NOT_ENOUGH_TO_ANALYSE"):
    """Too few learner turns for a meaningful analysis; refused before anything runs or bills."""
