"""How an AI engine's call fails, as Parley's errors (each with its stable code and status)."""

from __future__ import annotations

from parley.core.errors import BadRequest, ServiceUnavailable, UnprocessableEntity


class ProviderError(ServiceUnavailable):
    """The engine could not answer (throttled, overloaded, 5xx, timeout, unreachable).

    ``retryable``: worth another attempt on the same engine; ``retry_after``: how long the engine
    asked us to wait first (seconds), when it said."""

    code = "AI_UNAVAILABLE"

    def __init__(self, message: str, *, engine: str, retryable: bool = True, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.engine = engine
        self.retryable = retryable
        self.upstream_status = status
        self.retry_after = retry_after


class ProviderMisconfigured(ProviderError):
    """The deployment's fault, not the caller's: a retired, mistyped or not-enabled model, a refused
    key, missing permissions. Never retried on the same engine; the fallback answers where there is
    one, otherwise the caller gets 503. Logged as an error for the operator (``operator_action``
    says what to change) and counted in the ``ProviderConfigErrors`` metric, which has an alarm."""

    code = "AI_NOT_CONFIGURED"

    def __init__(self, message: str, *, engine: str, model: str, operator_action: str,
                 status: int | None = None) -> None:
        super().__init__(message, engine=engine, retryable=False, status=status)
        self.model = model
        self.operator_action = operator_action


class ProviderRejected(BadRequest):
    """The engine refused the request itself (a 4xx of ours): no retry, no fallback."""

    code = "AI_REQUEST_REJECTED"

    def __init__(self, message: str, *, engine: str, status: int | None = None) -> None:
        super().__init__(message)
        self.engine = engine
        self.upstream_status = status


class ModelRefused(UnprocessableEntity):
    """The model declined to answer this content (stop reason ``refusal``). Not retried - the same
    content would be refused again, and each attempt is billed - and metered once."""

    code = "AI_REFUSED"
