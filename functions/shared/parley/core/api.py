"""The HTTP edge shared by every REST function: resolver, owner, error body, request limits.

One stable error body for every endpoint and every failure:

    {"error": {"code": "VALIDATION_ERROR", "message": "...", "details": [{"field": "...", "message": "..."}]}}
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import ClientError

from parley.core import jsonlimits
from parley.core.errors import ParleyError, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from parley.core.observability import bind_owner_hash, logger
from parley.data.store import THROTTLING_CODES, error_code

# The two query parameters of every paged list (GET /sessions, /prompts, /conversations).
PageLimit = Annotated[int, Query(ge=1, le=100, description="Items per page")]
PageCursor = Annotated[str | None, Query(max_length=2048, description="nextCursor of the previous page")]
OWNER_PATTERN = re.compile(r"^(DEVICE|USER)#[A-Za-z0-9._-]{1,128}$")
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Device-Id", "X-Api-Key", "X-Amz-Date", "X-Amz-Security-Token"]


# An AWS error that means "the service is busy or broken right now", not "your request is wrong".
DEPENDENCY_UNAVAILABLE = THROTTLING_CODES | {
    "InternalError", "InternalFailure", "InternalServerException", "InternalFailureException", "SlowDown",
    "RequestTimeout", "ServiceUnavailableException", "TooManyRequestsException", "LimitExceededException",
    "ThrottledException", "RequestLimitExceeded",
}


def error_response(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response[str]:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_details(exc: RequestValidationError) -> tuple[str, str, list[dict[str, Any]]]:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return "MALFORMED_JSON", "The request body is not valid JSON.", []
    details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
               for e in errors]
    return "VALIDATION_ERROR", "The request is not valid; see details.", details


def validation_error_response(exc: RequestValidationError) -> Response[str]:
    """400 for a body that is not JSON, 422 naming each failing field otherwise."""
    code, message, details = validation_details(exc)
    return error_response(400 if code == "MALFORMED_JSON" else 422, code, message, details)


JSON_MEDIA = re.compile(r"^application/json$")


def content_type(event: Mapping[str, Any]) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == "content-type" and value:
            return str(value).split(";", 1)[0].strip().lower()
    return ""


def _body_text(event: Mapping[str, Any]) -> str | bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (ValueError, binascii.Error):
            return ""  # not base64: the parser answers it
    return str(body)


def body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8"))


class ParleyResolver(APIGatewayRestResolver):
    """A REST resolver that refuses an oversize body before anything parses it."""

    def __init__(self, *, cors_allow_origin: str, max_body_bytes: int) -> None:
        super().__init__(
            enable_validation=True,
            # Retry-After is exposed so a browser app can say when to retry a 429 or 503.
            cors=CORSConfig(allow_origin=cors_allow_origin, allow_headers=ALLOWED_HEADERS,
                            expose_headers=["Retry-After"], max_age=600),
        )
        self.cors_allow_origin = cors_allow_origin
        self.max_body_bytes = max_body_bytes

    def _refuse(self, exc: ParleyError) -> dict[str, Any]:
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        return {"statusCode": exc.status, "body": json.dumps(body), "isBase64Encoded": False,
                "headers": {"Content-Type": "application/json", "Access-Control-Allow-Origin": self.cors_allow_origin}}

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Refuse what must not reach parsing (oversize or non-JSON bodies); never leak a crash."""
        bind_owner_hash(event)
        size = body_size(event)
        if size > self.max_body_bytes:
            return self._refuse(PayloadTooLarge(
                f"The request body is {size} bytes; the limit for this endpoint is {self.max_body_bytes}."))
        media_type = content_type(event)
        if event.get("body") and media_type and not JSON_MEDIA.match(media_type):
            return self._refuse(UnsupportedMediaType(
                f"Send the body as application/json (got {media_type[:60]!r})."))
        if event.get("body"):
            try:
                jsonlimits.check(_body_text(event))
            except ParleyError as exc:  # deeper or longer than any parser takes: 400, not a crash
                return self._refuse(exc)
        try:
            return super().resolve(event, context)
        except Exception:  # anything the route's own handlers did not map (e.g. a parser crash)
            logger.exception("Unhandled error")
            return self._refuse(ParleyError("Something went wrong on our side."))


def make_resolver(*, cors_allow_origin: str, max_body_bytes: int) -> ParleyResolver:
    """A REST resolver with validation, CORS for the one configured origin, a body-size limit and
    the error mapping every Parley endpoint shares."""
    app = ParleyResolver(cors_allow_origin=cors_allow_origin, max_body_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[str]:
        return validation_error_response(exc)

    @app.exception_handler(ParleyError)
    def _domain(exc: ParleyError) -> Response[str]:
        if exc.status >= 500:
            logger.warning("Request failed", extra={"code": exc.code, "reason": exc.message})
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(ClientError)
    def _aws(exc: ClientError) -> Response[str]:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if error_code(exc) in DEPENDENCY_UNAVAILABLE or status >= 500:
            logger.warning("Dependency unavailable", extra={"code": error_code(exc), "operation": exc.operation_name})
            return error_response(503, "SERVICE_UNAVAILABLE",
                                  "A dependency is busy; nothing was changed. Retry shortly.",
                                  headers={"Retry-After": "1"})
        logger.exception("Unexpected AWS error")
        return error_response(500, "INTERNAL_ERROR", "Something went wrong on our side.")

    @app.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        event = app.current_event
        return error_response(404, "ROUTE_NOT_FOUND", f"No route for {event.http_method} {event.path}.")

    return app


def owner_of(app: APIGatewayRestResolver) -> str:
    """The owner partition, from the authorizer's context — never from the request body."""
    context = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    owner = context.get("owner")
    if not isinstance(owner, str) or not OWNER_PATTERN.match(owner):
        raise Unauthorized("The request carries no authenticated owner.")
    return owner



def no_content() -> Response[str]:
    """204 with an empty body: what a DELETE answers."""
    return Response(status_code=204, body="")


def rest_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point of a REST function: the request id as the logs' correlation id, the log
    keys of an earlier invocation cleared, one X-Ray segment (without the response body), then the
    routes of ``app``. A handler module says ``handler = rest_handler(app)``."""
    from parley.core.observability import tracer  # the X-Ray SDK loads here, in the init phase

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler
