"""The local stack behind ``make run``: the REST API on 127.0.0.1, AWS emulated by moto on loopback.

    LocalStack(port=3000).start()   # moto server + the template's resources + the HTTP API

Everything comes from ``template.yaml``: routes and authorizer (``gateway``), each function's
environment (``template``), the tables, buckets, buses and queues (``resources``). Functions run in
this process, so a debugger or a print in a handler works as usual. The AI engine is the offline
one unless ``AI_PROVIDER`` is set in the environment (see docs/getting-started.md).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .gateway import RestGateway
from .lambdas import FunctionRunner
from .resources import provision
from .template import Stack

LOCAL_PARAMETERS = {"Stage": "local", "AuthMode": "device", "CorsAllowOrigin": "http://localhost:5173"}
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}
# Settings a developer may pass through from their shell to the functions (e.g. a real AI engine).
PASS_THROUGH = ("AI_PROVIDER", "FALLBACK_TO_BEDROCK", "ANTHROPIC_MODEL_ID", "BEDROCK_MODEL_ID", "LOG_LEVEL",
                "WS_RESUME_GRACE_SECONDS")


def _handler_class(local: LocalStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "parley-local"
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for a delayed ACK

        def log_message(self, fmt: str, *args: Any) -> None:
            if local.verbose:
                super().log_message(fmt, *args)

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if url.path == "/openapi.json" and self.command == "GET":
                payload = json.dumps(local.openapi(), indent=2).encode()
                self._reply(200, {"Content-Type": "application/json"}, payload)
                return
            if self.command == "GET" and (url.path in ("/docs", "/docs/") or url.path.startswith("/docs/")):
                self._serve_api_docs(url.path)
                return
            headers = {k: v for k, v in self.headers.items()}
            response = local.gateway.handle(self.command, url.path, headers=headers, query=url.query, body=body,
                                            source_ip=self.client_address[0])
            self._reply(response.status, response.headers, response.body)

        def _serve_api_docs(self, path: str) -> None:
            from . import api_docs

            if path in ("/docs", "/docs/"):
                self._reply(200, {"Content-Type": "text/html; charset=utf-8"}, api_docs.page())
                return
            found = api_docs.asset(path.removeprefix("/docs/"))
            if found is None:
                self._reply(404, {"Content-Type": "text/plain"}, b"Not found")
                return
            content_type, data = found
            self._reply(200, {"Content-Type": content_type, "Cache-Control": "max-age=3600"}, data)

        def _reply(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the gateway, which answers unknown ones as API Gateway does (4xx).
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the listen backlog (socketserver's default, 5, resets a burst of clients)


class LocalStack:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 3000, parameters: Mapping[str, str] | None = None,
                 env_overrides: Mapping[str, str] | None = None, verbose: bool = False) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self.stack = Stack(parameters={**LOCAL_PARAMETERS, **(parameters or {})})
        overrides = {"AI_PROVIDER": "offline", "POWERTOOLS_TRACE_DISABLED": "true",
                     "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
        overrides.update({k: os.environ[k] for k in PASS_THROUGH if k in os.environ})
        overrides.update(env_overrides or {})
        self.runner = FunctionRunner(self.stack, env_overrides=overrides)
        self.gateway = RestGateway(self.stack, self.runner)
        self.resources: dict[str, str] = {}
        self.moto_endpoint = ""
        self._moto: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stoppers: list[Callable[[], None]] = []
        self._openapi: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _start_moto(self) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        logging.getLogger("werkzeug").setLevel(logging.INFO if self.verbose else logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        os.environ.update({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.stack.region, "AWS_REGION": self.stack.region,
                           "AWS_ENDPOINT_URL": self.moto_endpoint})
        os.environ.pop("AWS_PROFILE", None)

    def on_stop(self, stopper: Callable[[], None]) -> None:
        self._stoppers.append(stopper)

    def start(self) -> LocalStack:
        self._start_moto()
        self.resources = provision(self.stack)
        for extension in _extensions():
            extension(self)
        self._http = _Server((self.host, self.port), _handler_class(self))
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="parley-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for stopper in reversed(self._stoppers):
            stopper()
        if self._http:
            self._http.shutdown()
            self._http.server_close()
        if self._moto:
            self._moto.stop()
        os.environ.pop("AWS_ENDPOINT_URL", None)

    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            from .openapi import build_openapi

            self._openapi = build_openapi(self.stack, self.runner, server_url=self.url)
        return self._openapi


def _extensions() -> list[Callable[[LocalStack], None]]:
    """Feature modules that plug into the local stack (state machines, bus delivery, ...).

    Each module under local_stack/ that defines ``attach(local)`` is started after the
    resources exist; ``attach`` may register a stopper with ``local.on_stop``.
    """
    import importlib

    found = []
    for name in ("lambdas", "workflows", "bus", "speech", "websocket"):
        try:
            module = importlib.import_module(f"local_stack.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"local_stack.{name}":
                raise
            continue
        attach = getattr(module, "attach", None)
        if callable(attach):
            found.append(attach)
    return found
