"""One OpenAPI document for the whole REST API, generated from the handlers' own routes.

Each REST function's Powertools resolver knows its routes, parameters and pydantic models; this
merges them into one document (``make openapi`` writes ``openapi.json``; the local stack serves
it at ``/openapi.json``). A test checks that the document's operations are exactly the template's
routes and that the committed file is current.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from .lambdas import FunctionRunner
from .template import ROOT, Stack

TITLE = "Parley API"
VERSION = "1.0.0"
DESCRIPTION = (
    "REST API of Parley: the speaking tutor (settings, sessions, messages, chat, speech, transcription, "
    "analysis) and the proofreader (prompts, files, proofreading, conversations), plus usage. "
    "Every error has the body {\"error\": {\"code\", \"message\", \"details\"}}."
)
ERROR_SCHEMA = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "details"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": "array", "items": {"type": "object"}}},
    }},
}
SECURITY_SCHEMES = {
    "deviceId": {"type": "apiKey", "in": "header", "name": "X-Device-Id",
                 "description": "AuthMode=device: the app's device id (8-64 of A-Z a-z 0-9 _ -)."},
    "cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "AuthMode=cognito: an access or id token of the stack's user pool."},
}


def build_openapi(stack: Stack, runner: FunctionRunner, *, server_url: str = "/") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    routed = {route.function for route in stack.api_routes()}
    for logical_id in sorted(routed):
        module = runner.module(logical_id)
        app = getattr(module, "app", None)
        if app is None or not hasattr(app, "get_openapi_schema"):
            continue
        doc = app.get_openapi_schema(title=TITLE, version=VERSION).model_dump(
            mode="json", by_alias=True, exclude_none=True)
        for path, operations in doc.get("paths", {}).items():
            paths.setdefault(path, {}).update(operations)
        schemas.update(doc.get("components", {}).get("schemas", {}))
    # Powertools' own validation-error shapes: our errors use the one error body instead (and a
    # dangling $ref to the dropped ValidationError would break every OpenAPI code generator).
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in paths.values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            # Our validation errors use the one error body, not Powertools' default shape.
            if "422" in responses:
                responses["422"] = {"description": "Validation error", "content": error_body}
            if "204" in responses:
                responses["204"].pop("content", None)
            for status, description in (("401", "Not authenticated"), ("4XX", "Client error"),
                                        ("5XX", "Server or dependency error")):
                responses.setdefault(status, {"description": description, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": SECURITY_SCHEMES},
        "security": [{"deviceId": []}, {"cognito": []}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="write to this file instead of printing")
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    stack = Stack(parameters={"Stage": "local", "AuthMode": "device"})
    runner = FunctionRunner(stack, env_overrides={"POWERTOOLS_TRACE_DISABLED": "true", "AI_PROVIDER": "offline"})
    text = json.dumps(build_openapi(stack, runner), indent=2, sort_keys=False) + "\n"
    if args.write:
        (ROOT / args.write if not args.write.is_absolute() else args.write).write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
