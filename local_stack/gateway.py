"""API Gateway (REST, Lambda proxy) emulation: route, authorize, build the event, map the answer.

Routes, the authorizer, CORS and gateway error responses all come from ``template.yaml``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .lambdas import FunctionRunner
from .template import Route, Stack

LOG = logging.getLogger("local_stack")


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _unquote(value: Any) -> str:
    return str(value).strip("'") if value is not None else ""


class RestGateway:
    def __init__(self, stack: Stack, runner: FunctionRunner, *, api: str = "RestApi") -> None:
        self.stack = stack
        self.runner = runner
        self.api = api
        self.routes = [r for r in stack.api_routes() if r.api == api]
        props = stack.resolve((stack.resources.get(api) or {}).get("Properties") or {})
        self.stage = str(props.get("StageName", "local"))
        self.cors = props.get("Cors") or {}
        self.gateway_responses = props.get("GatewayResponses") or {}
        self.binary_types = [str(t).replace("~1", "/") for t in props.get("BinaryMediaTypes") or []]

    # -- helpers --------------------------------------------------------------------------------
    def _cors_headers(self) -> dict[str, str]:
        if not self.cors:
            return {}
        return {
            "Access-Control-Allow-Origin": _unquote(self.cors.get("AllowOrigin")),
            "Access-Control-Allow-Headers": _unquote(self.cors.get("AllowHeaders")),
            "Access-Control-Allow-Methods": _unquote(self.cors.get("AllowMethods")),
            "Access-Control-Max-Age": _unquote(self.cors.get("MaxAge")),
        }

    def _gateway_error(self, kind: str, status: int, message: str) -> HttpResponse:
        spec = self.gateway_responses.get(kind) or self.gateway_responses.get(
            "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX") or {}
        status = int(spec.get("StatusCode", status))
        template = (spec.get("ResponseTemplates") or {}).get("application/json")
        body = (template.replace("$context.error.messageString", json.dumps(message)) if template
                else json.dumps({"message": message}))
        headers = {k: _unquote(v) for k, v in ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items()}
        headers["Content-Type"] = "application/json"
        return HttpResponse(status, headers, body.encode())

    def _is_binary(self, content_type: str) -> bool:
        kind = content_type.split(";")[0].strip().lower()
        return any(t == kind or t == "*/*" or (t.endswith("/*") and kind.startswith(t[:-1])) for t in self.binary_types)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None

    # -- the request ----------------------------------------------------------------------------
    def handle(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
               query: str = "", body: bytes | str | None = None, source_ip: str = "127.0.0.1") -> HttpResponse:
        headers = dict(headers or {})
        method = method.upper()
        if method == "OPTIONS" and self.cors:
            return HttpResponse(200, self._cors_headers())
        found = self.match(method, path)
        if found is None:
            # API Gateway answers an unknown resource and an unsupported method alike: 403 "Missing
            # Authentication Token" - or, when an Authorization header came along, an INVALID_SIGNATURE
            # 403 (it reads the header as a SigV4 signature) - unless the API maps those responses.
            signed = any(k.lower() == "authorization" for k in headers)
            kind = "INVALID_SIGNATURE" if signed else "MISSING_AUTHENTICATION_TOKEN"
            return self._gateway_error(kind, 403, "Missing Authentication Token")
        route, path_params = found
        raw = body.encode() if isinstance(body, str) else (body or b"")
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        is_b64 = bool(raw) and self._is_binary(content_type)
        query_multi = parse_qs(query, keep_blank_values=True) if query else {}
        request_id = str(uuid.uuid4())
        context: dict[str, Any] = {
            "resourcePath": route.path, "httpMethod": method, "path": f"/{self.stage}{path}", "stage": self.stage,
            "requestId": request_id, "accountId": self.stack.account, "apiId": "local",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "requestTimeEpoch": int(time.time() * 1000), "protocol": "HTTP/1.1",
        }
        event: dict[str, Any] = {
            "resource": route.path, "path": path, "httpMethod": method,
            "headers": headers or None, "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
            "queryStringParameters": {k: v[-1] for k, v in query_multi.items()} or None,
            "multiValueQueryStringParameters": query_multi or None,
            "pathParameters": path_params or None, "stageVariables": None, "requestContext": context,
            "body": (base64.b64encode(raw).decode() if is_b64 else raw.decode("utf-8", "replace")) if raw else None,
            "isBase64Encoded": is_b64,
        }
        if route.authorizer:
            denied = self._authorize(route, event)
            if denied is not None:
                return denied
        try:
            result = self.runner.invoke(route.function, event)
        except Exception as exc:  # a crashed function is a 502 from API Gateway
            LOG.exception("%s crashed on %s %s", route.function, method, path)
            return self._gateway_error("DEFAULT_5XX", 502, f"Internal server error ({type(exc).__name__})")
        return self._to_http(result)

    def _authorize(self, route: Route, event: dict[str, Any]) -> HttpResponse | None:
        assert route.authorizer is not None
        arn = (f"arn:aws:execute-api:{self.stack.region}:{self.stack.account}:local/{self.stage}/"
               f"{event['httpMethod']}{route.path}")
        request = {
            "type": "REQUEST", "methodArn": arn, "resource": route.path, "path": event["path"],
            "httpMethod": event["httpMethod"], "headers": event["headers"] or {},
            "queryStringParameters": event["queryStringParameters"] or {},
            "pathParameters": event["pathParameters"] or {}, "requestContext": event["requestContext"],
        }
        try:
            policy = self.runner.invoke(route.authorizer, request)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                return self._gateway_error("UNAUTHORIZED", 401, "Unauthorized")
            LOG.exception("The authorizer %s crashed", route.authorizer)
            return self._gateway_error("DEFAULT_5XX", 500, "Authorizer error")
        statements = policy.get("policyDocument", {}).get("Statement", [])
        if not any(s.get("Effect") == "Allow" for s in statements):
            return self._gateway_error("ACCESS_DENIED", 403, "User is not authorized to access this resource")
        event["requestContext"]["authorizer"] = {"principalId": policy.get("principalId"),
                                                 **{k: str(v) for k, v in (policy.get("context") or {}).items()}}
        return None

    def _to_http(self, result: Any) -> HttpResponse:
        if not isinstance(result, dict) or "statusCode" not in result:
            return self._gateway_error("DEFAULT_5XX", 502, "Malformed Lambda proxy response")
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key] = ",".join(str(v) for v in values)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
        return HttpResponse(int(result["statusCode"]), headers, raw)
