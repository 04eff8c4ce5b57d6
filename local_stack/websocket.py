"""The proofreading WebSocket API in the local stack: ``ws://127.0.0.1:<port + 1>/?deviceId=...``.

API Gateway's WebSocket API, emulated from ``template.yaml`` with the standard library (RFC 6455,
text frames): the $connect route's authorizer and integration, route selection on
``$request.body.action`` (``sendMessage``, ``ping``, else ``$default``), and $disconnect. The
functions post their answers to the ``@connections`` callback, which this server also serves
(``POST/GET/DELETE /@connections/<id>``): the message function is told to use it through
``WEBSOCKET_CALLBACK_URL``. A post to a connection that has gone away answers 410, like API Gateway.

Limits as in API Gateway: a client message over 128 KB closes the connection (1009). The
connection is not timed out (API Gateway closes idle connections after 10 minutes and every
connection after 2 hours; the ``ping`` route is how clients stay connected there).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import socket
import struct
import threading
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .lambdas import FunctionRunner
from .template import Stack

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"
MESSAGE_LIMIT = 128 * 1024
API_ID = "localws"


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
    def __init__(self, sock: socket.socket, connection_id: str) -> None:
        self.sock = sock
        self.id = connection_id
        self.lock = threading.Lock()
        self.open = True

    def send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header += bytes([size])
        elif size < 65536:
            header += bytes([126]) + struct.pack(">H", size)
        else:
            header += bytes([127]) + struct.pack(">Q", size)
        with self.lock:
            self.sock.sendall(header + payload)

    def close(self, code: int = 1000) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(OSError):
                self.send_frame(0x8, struct.pack(">H", code))


def read_message(rfile: Any, conn: Connection) -> tuple[int, bytes] | None:
    """One whole message (text or binary, reassembled from fragments); None when the peer closed."""
    parts: list[bytes] = []
    kind = 0
    while True:
        head = rfile.read(2)
        if len(head) < 2:
            return None
        fin, opcode = head[0] & 0x80, head[0] & 0x0F
        size = head[1] & 0x7F
        if size == 126:
            size = struct.unpack(">H", rfile.read(2))[0]
        elif size == 127:
            size = struct.unpack(">Q", rfile.read(8))[0]
        mask = rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(rfile.read(size)))
        if opcode == 0x8:
            return None
        if opcode == 0x9:
            conn.send_frame(0xA, data)
            continue
        if opcode == 0xA:
            continue
        if opcode in (0x1, 0x2):
            kind = opcode
        parts.append(data)
        if sum(len(p) for p in parts) > MESSAGE_LIMIT:
            conn.close(1009)
            return None
        if fin:
            return kind, b"".join(parts)


class LocalWebSocketApi:
    def __init__(self, stack: Stack, runner: FunctionRunner, *, api: str = "WebSocketApi") -> None:
        self.stack = stack
        self.runner = runner
        self.api = api
        self.connections: dict[str, Connection] = {}
        self.stage = str(stack.parameters.get("Stage", "local"))
        self.routes = {key: _route_target(stack, api, key) for key in ("$connect", "$disconnect", "$default")}
        self.authorizer = _authorizer_of(stack, api)
        selection = (stack.resources[api].get("Properties") or {}).get("RouteSelectionExpression", "")
        self.selection_field = str(selection).removeprefix("$request.body.")
        self.server: ThreadingHTTPServer | None = None

    # -- events as API Gateway builds them -------------------------------------------------------
    def _context(self, conn_id: str, route: str, kind: str, host: str, **extra: Any) -> dict[str, Any]:
        return {"routeKey": route, "eventType": kind, "connectionId": conn_id, "domainName": host,
                "stage": self.stage, "apiId": API_ID, "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": "127.0.0.1"}, **extra}

    def route_for(self, body: bytes) -> str:
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

    def message(self, conn_id: str, host: str, body: bytes) -> None:
        route = self.route_for(body)
        target = _route_target(self.stack, self.api, route) or self.routes["$default"]
        if target:
            self.runner.invoke(target, {"body": body.decode("utf-8", "replace"), "isBase64Encoded": False,
                                        "requestContext": self._context(conn_id, route, "MESSAGE", host)})

    def disconnect(self, conn_id: str, host: str) -> None:
        if self.routes["$disconnect"]:
            self.runner.invoke(self.routes["$disconnect"], {
                "requestContext": self._context(conn_id, "$disconnect", "DISCONNECT", host,
                                                disconnectStatusCode=1000)})

    # -- the server ---------------------------------------------------------------------------------
    def start(self, host: str, port: int) -> str:
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="parley-ws", daemon=True).start()
        return f"http://{host}:{self.server.server_address[1]}"

    def stop(self) -> None:
        for conn in list(self.connections.values()):
            conn.close(1001)
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def _handler(api: LocalWebSocketApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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

        # the @connections callback the functions post to
        def do_POST(self) -> None:  # http.server's naming
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            conn = self._connection()
            if conn is None or not conn.open:
                self._reply(410, b'{"message": "GoneException"}')
                return
            if len(data) > MESSAGE_LIMIT:
                self._reply(413, b'{"message": "PayloadTooLargeException"}')
                return
            try:
                conn.send_frame(0x1, data)
            except OSError:
                conn.open = False
                self._reply(410, b'{"message": "GoneException"}')
                return
            self._reply(200, b"{}")

        def do_DELETE(self) -> None:
            conn = self._connection()
            if conn is None:
                self._reply(410, b'{"message": "GoneException"}')
                return
            conn.close()
            self._reply(204)

        def do_GET(self) -> None:
            if "/@connections/" in self.path:
                conn = self._connection()
                self._reply(200, b'{"identity": {"sourceIp": "127.0.0.1"}}') if conn else self._reply(410)
                return
            if self.headers.get("Upgrade", "").lower() != "websocket":
                self._reply(426, b'{"message": "Upgrade to a WebSocket: ws://host:port/?deviceId=..."}')
                return
            self._websocket()

        def _websocket(self) -> None:
            conn_id = base64.b64encode(os.urandom(12)).decode()[:15] + "="
            host = self.headers.get("Host", "localhost")
            query = dict(parse_qsl(urlsplit(self.path).query))
            headers = {k: v for k, v in self.headers.items()}
            if not api.connect(conn_id, host, headers, query):
                self._reply(401, b'{"message": "Unauthorized"}')
                return
            key = (self.headers["Sec-WebSocket-Key"] + _GUID).encode()
            accept = base64.b64encode(hashlib.sha1(key, usedforsecurity=False).digest())  # RFC 6455's handshake
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept.decode())
            self.end_headers()
            self.wfile.flush()
            conn = Connection(self.connection, conn_id)
            api.connections[conn_id] = conn
            try:
                while conn.open:
                    message = read_message(self.rfile, conn)
                    if message is None:
                        break
                    api.message(conn_id, host, message[1])
            except OSError:
                pass
            finally:
                conn.close()
                api.connections.pop(conn_id, None)
                api.disconnect(conn_id, host)
                self.close_connection = True

    return Handler


def attach(local: Any) -> None:
    """Serve the template's WebSocket API next to the REST API (port + 1, or PARLEY_WS_PORT)."""
    if "WebSocketApi" not in local.stack.resources:
        return
    api = LocalWebSocketApi(local.stack, local.runner)
    port = int(os.environ.get("PARLEY_WS_PORT", str(local.port + 1 if local.port else 0)))
    url = api.start(local.host, port)
    local.runner.env_overrides["WEBSOCKET_CALLBACK_URL"] = url
    local.websocket = api
    local.websocket_url = url.replace("http://", "ws://", 1)
    local.on_stop(api.stop)
