"""The proofreading WebSocket API in the local stack: ``ws://127.0.0.1:<port + 1>/?deviceId=...``.

API Gateway's WebSocket API, emulated from ``template.yaml``; the protocol itself (RFC 6455: the
handshake, framing, close codes) is the maintained ``websockets`` library's, so a browser or any
standard client connects exactly as it would to API Gateway. What is emulated around it:

- ``$connect``: the route's REQUEST authorizer (a deny is a 401 before the upgrade, as in API
  Gateway) and integration; the connection id is made here and given to every route.
- route selection on ``$request.body.action`` (``sendMessage``, ``ping``, else ``$default``); each
  message is its own invocation, on its own thread, so a ``ping`` is answered while an answer streams.
- ``$disconnect`` when the client goes away, whichever side closed.
- the ``@connections`` callback the functions post to (``POST/GET/DELETE /@connections/<id>``,
  on a port of its own, told to the message function as ``WEBSOCKET_CALLBACK_URL``): 410
  ``GoneException`` once a client has gone, 413 over the limit.
- API Gateway's limits: a client message over 128 KB closes the connection (1009, the library's
  ``max_size``); an idle connection is closed after 10 minutes (``PARLEY_WS_IDLE_SECONDS``) and
  every connection after 2 hours (``PARLEY_WS_MAX_SECONDS``), with 1001 "Going away". No
  permessage-deflate and no server pings: API Gateway offers neither, so clients must keep
  themselves alive (the ``ping`` route).

A test hook, for clients' reconnect logic: ``POST /@local/drop`` on the callback port cuts every
open connection without a close frame (a lost network); ``{"afterFrames": n}`` cuts each one after
the next n frames posted to it (in the middle of a streamed answer).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from .lambdas import FunctionRunner
from .template import Stack

MESSAGE_LIMIT = 128 * 1024
API_ID = "localws"
IDLE_SECONDS = 600.0
MAX_SECONDS = 7200.0


def _function_in(uri: Any) -> str:
    """``WsConnectFunction`` from ``!Sub arn:...:functions/${WsConnectFunction.Arn}/invocations``."""
    found = re.search(r"\$\{(\w+)\.Arn\}", str(uri.get("Fn::Sub") if isinstance(uri, dict) else uri))
    if not found:
        raise ValueError(f"Cannot tell which function {uri!r} invokes")
    return found.group(1)


def _route_target(stack: Stack, api: str, route_key: str) -> str | None:
    """The function logical id behind a route (Route -> Integration -> function ARN)."""
    for route in stack.resources.values():
        props = route.get("Properties") or {}
        if route["Type"] != "AWS::ApiGatewayV2::Route" or props.get("ApiId", {}).get("Ref") != api:
            continue
        if props.get("RouteKey") != route_key:
            continue
        integration = str(props["Target"]["Fn::Sub"]).split("${", 1)[1].rstrip("}")
        return _function_in(stack.resources[integration]["Properties"]["IntegrationUri"])
    return None


def _authorizer_of(stack: Stack, api: str) -> str | None:
    for route in stack.resources.values():
        props = route.get("Properties") or {}
        if route["Type"] == "AWS::ApiGatewayV2::Route" and props.get("RouteKey") == "$connect" \
                and props.get("ApiId", {}).get("Ref") == api and props.get("AuthorizerId"):
            authorizer = stack.resources[props["AuthorizerId"]["Ref"]]["Properties"]
            return _function_in(authorizer["AuthorizerUri"])
    return None


class Connection:
    """One client, as the ``@connections`` API sees it."""

    def __init__(self, ws: ServerConnection, connection_id: str) -> None:
        self.ws = ws
        self.id = connection_id
        self.connected_at = time.monotonic()
        self.last_active = self.connected_at
        self.drop_after: int | None = None
        self.lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self.ws.state is State.OPEN

    def post(self, data: str) -> None:
        self.ws.send(data)
        self.last_active = time.monotonic()
        with self.lock:
            if self.drop_after is not None:
                self.drop_after -= 1
                if self.drop_after <= 0:
                    self.drop()

    def drop(self) -> None:
        """Cut the TCP connection, no close frame: what a client sees when its network goes."""
        with contextlib.suppress(OSError):
            self.ws.socket.shutdown(socket.SHUT_RDWR)


class LocalWebSocketApi:
    def __init__(self, stack: Stack, runner: FunctionRunner, *, api: str = "WebSocketApi",
                 idle_seconds: float = IDLE_SECONDS, max_seconds: float = MAX_SECONDS) -> None:
        self.stack = stack
        self.runner = runner
        self.api = api
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.connections: dict[str, Connection] = {}
        self.stage = str(stack.parameters.get("Stage", "local"))
        self.routes = {key: _route_target(stack, api, key) for key in ("$connect", "$disconnect", "$default")}
        self.authorizer = _authorizer_of(stack, api)
        selection = (stack.resources[api].get("Properties") or {}).get("RouteSelectionExpression", "")
        self.selection_field = str(selection).removeprefix("$request.body.")
        self._ws_server: Server | None = None
        self._callbacks: ThreadingHTTPServer | None = None

    # -- events as API Gateway builds them -------------------------------------------------------
    def _context(self, conn_id: str, route: str, kind: str, host: str, **extra: Any) -> dict[str, Any]:
        return {"routeKey": route, "eventType": kind, "connectionId": conn_id, "domainName": host,
                "stage": self.stage, "apiId": API_ID, "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": "127.0.0.1"}, **extra}

    def route_for(self, body: str) -> str:
        try:
            action = json.loads(body).get(self.selection_field)
        except (ValueError, AttributeError):
            action = None
        if isinstance(action, str) and _route_target(self.stack, self.api, action):
            return action
        return "$default"

    def connect(self, conn_id: str, host: str, headers: Mapping[str, str], query: dict[str, str]) -> bool:
        context = self._context(conn_id, "$connect", "CONNECT", host)
        if self.authorizer:
            arn = f"arn:aws:execute-api:{self.stack.region}:{self.stack.account}:{API_ID}/{self.stage}/$connect"
            try:
                policy = self.runner.invoke(self.authorizer, {
                    "type": "REQUEST", "methodArn": arn, "headers": dict(headers),
                    "queryStringParameters": query, "requestContext": context})
            except Exception:
                return False
            if not any(s.get("Effect") == "Allow" for s in policy["policyDocument"]["Statement"]):
                return False
            context["authorizer"] = {"principalId": policy["principalId"],
                                     **{k: str(v) for k, v in (policy.get("context") or {}).items()}}
        target = self.routes["$connect"]
        if target is None:
            return True
        result = self.runner.invoke(target, {"headers": dict(headers), "queryStringParameters": query or None,
                                             "requestContext": context, "isBase64Encoded": False})
        return 200 <= int((result or {}).get("statusCode", 200)) < 300

    def message(self, conn_id: str, host: str, body: str) -> None:
        route = self.route_for(body)
        target = _route_target(self.stack, self.api, route) or self.routes["$default"]
        if target:
            self.runner.invoke(target, {"body": body, "isBase64Encoded": False,
                                        "requestContext": self._context(conn_id, route, "MESSAGE", host)})

    def disconnect(self, conn_id: str, host: str, code: int) -> None:
        if self.routes["$disconnect"]:
            self.runner.invoke(self.routes["$disconnect"], {
                "requestContext": self._context(conn_id, "$disconnect", "DISCONNECT", host,
                                                disconnectStatusCode=code)})

    # -- the WebSocket server (the websockets library) ---------------------------------------------
    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        """The handshake's HTTP request: $connect runs here, so a deny never upgrades."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _json_response(HTTPStatus.UPGRADE_REQUIRED,
                                  {"message": "Upgrade to a WebSocket: ws://host:port/?deviceId=..."})
        conn_id = base64.b64encode(os.urandom(12)).decode()[:15] + "="
        host = request.headers.get("Host", "localhost")
        query = dict(parse_qsl(urlsplit(request.path).query))
        headers = {k: v for k, v in request.headers.raw_items()}
        if not self.connect(conn_id, host, headers, query):
            return _json_response(HTTPStatus.UNAUTHORIZED, {"message": "Unauthorized"})
        ws.parley_id = conn_id  # type: ignore[attr-defined]
        ws.parley_host = host  # type: ignore[attr-defined]
        return None

    def _serve_connection(self, ws: ServerConnection) -> None:
        conn_id: str = ws.parley_id  # type: ignore[attr-defined]
        host: str = ws.parley_host  # type: ignore[attr-defined]
        conn = Connection(ws, conn_id)
        self.connections[conn_id] = conn
        try:
            while True:
                now = time.monotonic()
                left = min(conn.last_active + self.idle_seconds, conn.connected_at + self.max_seconds) - now
                if left <= 0:
                    ws.close(1001, "Going away")
                    break
                try:
                    body = ws.recv(timeout=left)
                except TimeoutError:
                    continue
                conn.last_active = time.monotonic()
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
                # Each message is its own invocation, as in API Gateway: a ping is answered while an
                # earlier sendMessage is still streaming.
                threading.Thread(target=self._invoke_message, args=(conn_id, host, text),
                                 name="parley-ws-message", daemon=True).start()
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(conn_id, None)
            self.disconnect(conn_id, host, ws.close_code or 1006)

    def _invoke_message(self, conn_id: str, host: str, text: str) -> None:
        try:
            self.message(conn_id, host, text)
        except Exception:  # a crashed function: API Gateway logs it, the client hears nothing
            import logging

            logging.getLogger("local_stack").exception("The WebSocket message function crashed")

    def start(self, host: str, port: int, callback_port: int = 0) -> str:
        """Serve the WebSocket on ``port`` and the callback API on ``callback_port``; returns its URL."""
        self._ws_server = serve(self._serve_connection, host, port, process_request=self._process_request,
                                max_size=MESSAGE_LIMIT, compression=None, ping_interval=None,
                                server_header=None)
        threading.Thread(target=self._ws_server.serve_forever, name="parley-ws", daemon=True).start()
        self._callbacks = ThreadingHTTPServer((host, callback_port), _callback_handler(self))
        self._callbacks.daemon_threads = True
        threading.Thread(target=self._callbacks.serve_forever, name="parley-ws-callbacks", daemon=True).start()
        return f"http://{host}:{self._callbacks.server_address[1]}"

    @property
    def port(self) -> int:
        assert self._ws_server is not None
        return int(self._ws_server.socket.getsockname()[1])

    def drop(self, after_frames: int | None = None) -> int:
        """The test hook: cut every open connection now, or after its next ``after_frames`` posts."""
        conns = list(self.connections.values())
        for conn in conns:
            if after_frames:
                with conn.lock:
                    conn.drop_after = after_frames
            else:
                conn.drop()
        return len(conns)

    def stop(self) -> None:
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                conn.ws.close(1001, "Going away")
        if self._ws_server:
            self._ws_server.shutdown()
        if self._callbacks:
            self._callbacks.shutdown()
            self._callbacks.server_close()


def _json_response(status: HTTPStatus, body: dict[str, Any]) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                       ("Connection", "close")])
    return Response(status.value, status.phrase, headers, data)


def _callback_handler(api: LocalWebSocketApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY: the answer's headers and body are two writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK (40 ms on Linux) - a delay API Gateway's endpoint does not have.
        disable_nagle_algorithm = True

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _connection(self) -> Connection | None:
            path = urlsplit(self.path).path
            if "/@connections/" not in path:
                return None
            return api.connections.get(unquote(path.split("/@connections/", 1)[1]))

        def do_POST(self) -> None:  # http.server's naming
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if urlsplit(self.path).path == "/@local/drop":
                after = (json.loads(data) if data else {}).get("afterFrames")
                self._reply(200, json.dumps({"connections": api.drop(after)}).encode())
                return
            conn = self._connection()
            if conn is None or not conn.open:
                self._reply(410, b'{"message": "GoneException"}')
                return
            if len(data) > MESSAGE_LIMIT:
                self._reply(413, b'{"message": "PayloadTooLargeException"}')
                return
            try:
                conn.post(data.decode("utf-8"))
            except (ConnectionClosed, OSError):
                self._reply(410, b'{"message": "GoneException"}')
                return
            self._reply(200, b"{}")

        def do_DELETE(self) -> None:
            conn = self._connection()
            if conn is None or not conn.open:
                self._reply(410, b'{"message": "GoneException"}')
                return
            conn.ws.close(1000)
            self._reply(204)

        def do_GET(self) -> None:
            conn = self._connection()
            if conn is None or not conn.open:
                self._reply(410, b'{"message": "GoneException"}')
                return
            self._reply(200, json.dumps({"identity": {"sourceIp": "127.0.0.1"}}).encode())

    return Handler


def attach(local: Any) -> None:
    """Serve the template's WebSocket API next to the REST API (port + 1, or PARLEY_WS_PORT)."""
    if "WebSocketApi" not in local.stack.resources:
        return
    api = LocalWebSocketApi(local.stack, local.runner,
                            idle_seconds=float(os.environ.get("PARLEY_WS_IDLE_SECONDS", IDLE_SECONDS)),
                            max_seconds=float(os.environ.get("PARLEY_WS_MAX_SECONDS", MAX_SECONDS)))
    port = int(os.environ.get("PARLEY_WS_PORT", str(local.port + 1 if local.port else 0)))
    callback_url = api.start(local.host, port)
    local.runner.env_overrides["WEBSOCKET_CALLBACK_URL"] = callback_url
    local.websocket = api
    local.websocket_url = f"ws://{local.host}:{api.port}"
    local.websocket_callback_url = callback_url
    local.on_stop(api.stop)
