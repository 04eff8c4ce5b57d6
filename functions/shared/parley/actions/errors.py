"""The action API's own errors, and how ``POST /chat``'s validation errors read for an action body."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError as PydanticValidationError

from parley.actions.requests import ACTIONS
from parley.core.api import error_response, validation_error_response
from parley.core.errors import BadRequest, ParleyError, UnprocessableEntity


class InvalidValue(UnprocessableEntity):
    """A model built from the envelope's values refused them: the 422 the route would answer."""

    code = "VALIDATION_ERROR"

    @classmethod
    def of(cls, error: PydanticValidationError) -> InvalidValue:
        return cls("The request is not valid; see details.", details=[
            {"field": ".".join(map(str, ("body", *e["loc"]))), "message": e["msg"], "type": e["type"]}
            for e in error.errors()])


# -- validation errors of POST /chat -----------------------------------------------------------
def _without_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union tags pydantic puts in a location (``body.action.tts.text`` -> ``body.text``)."""
    parts = list(loc)
    if len(parts) > 1 and parts[1] in ("message", "action"):
        del parts[1]
        if len(parts) > 1 and parts[1] in ACTIONS:
            del parts[1]
    return tuple(parts)


def chat_validation_error(exc: RequestValidationError) -> ParleyError | RequestValidationError:
    """An unknown action becomes 400 ``UNKNOWN_ACTION``; other errors lose the union tags."""
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "union_tag_invalid":
            given = (error.get("input") or {}).get("action") if isinstance(error.get("input"), dict) else None
            return UnknownAction(f"Unknown action {given!r}. Known actions: {', '.join(ACTIONS)}.",
                                 details=[{"field": "body.action", "known": list(ACTIONS)}])
    return RequestValidationError([{**e, "loc": _without_tags(tuple(e.get("loc", ())))} for e in errors],
                                  body=exc.body)


class UnknownAction(BadRequest):
    code = "UNKNOWN_ACTION"


class ActionsDisabled(BadRequest):
    code = "ACTION_ENVELOPE_DISABLED"


class TranscriptionFailed(UnprocessableEntity):
    code = "TRANSCRIPTION_FAILED"


class AnalysisFailed(ParleyError):
    status = 502
    code = "ANALYSIS_FAILED"


def chat_validation_response(exc: RequestValidationError) -> Response[str]:
    """POST /chat's answer to a body it could not validate (``chat_validation_error``, as Parley's one error body)."""
    mapped = chat_validation_error(exc)
    if isinstance(mapped, ParleyError):
        return error_response(mapped.status, mapped.code, mapped.message, mapped.details)
    return validation_error_response(mapped)
