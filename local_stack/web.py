"""The web app in the local stack: ``web/dist`` served as CloudFront serves the bucket in AWS.

- ``/config.json`` is written for this stack (the API and WebSocket URLs, device sign-in): the same
  build runs against AWS with the ``config.json`` that ``make deploy-web`` writes.
- Single-page routing: a path that is not a file answers ``index.html``.
- Caching as in the CloudFront distribution: hashed ``/assets/*`` for a year, ``index.html`` and
  ``config.json`` never.
- The app is served on its own origin (its own port), as in AWS, so the browser checks the API's
  CORS answers exactly as it will against API Gateway; the stack's ``CorsAllowOrigin`` is this
  origin. ``localhost`` is redirected to ``127.0.0.1`` so there is one origin.
"""

from __future__ import annotations

import json
import mimetypes
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .template import ROOT

DIST = ROOT / "web" / "dist"
SOURCES = ("src", "public", "scripts", "index.html", "package.json", "package-lock.json", "vite.config.ts",
           "tsconfig.json")
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache, no-store, must-revalidate"
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
         ".json": "application/json", ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml",
         ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain", ".wav": "audio/wav"}


def stale_sources(web: Path = ROOT / "web", dist: Path = DIST) -> list[Path]:
    """Source files newer than the last build (all of them when there is no build)."""
    built = dist / "index.html"
    stamp = built.stat().st_mtime if built.exists() else 0.0
    newer: list[Path] = []
    for name in (*SOURCES, "../openapi.json"):
        path = (web / name).resolve()
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.exists() else []
        newer += [p for p in files if p.stat().st_mtime > stamp]
    return newer


class WebApp:
    """A static server for the built app; bind first (the API's CORS origin is its URL), then serve."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, dist: Path = DIST) -> None:
        self.dist = dist
        self.host = host
        self.config: dict[str, Any] = {}
        self._server = ThreadingHTTPServer((host, port), _handler(self), bind_and_activate=False)
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.server_bind()
        self._server.server_activate()
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, config: dict[str, Any]) -> WebApp:
        self.config = config
        threading.Thread(target=self._server.serve_forever, name="parley-web", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def local_config(api_url: str, websocket_url: str) -> dict[str, Any]:
    """The ``config.json`` of the local stack (see docs/web-app.md for every field)."""
    return {"apiUrl": api_url, "webSocketUrl": websocket_url, "auth": {"mode": "device"}, "stage": "local"}


def _handler(app: WebApp) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "parley-web"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str, cache: str,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # http.server's naming
            host = self.headers.get("Host", "")
            if host.split(":")[0] == "localhost":
                self._send(308, b"", "text/plain", NO_CACHE, {"Location": app.url + self.path})
                return
            path = unquote(urlsplit(self.path).path)
            if path == "/config.json":
                self._send(200, json.dumps(app.config).encode(), "application/json", NO_CACHE)
                return
            if not (app.dist / "index.html").exists():
                self._send(503, b"The web app is not built: run `make web` (or `make run`, which builds it).",
                           "text/plain; charset=utf-8", NO_CACHE)
                return
            target = (app.dist / path.lstrip("/")).resolve()
            if not target.is_relative_to(app.dist.resolve()) or not target.is_file():
                if path.startswith("/assets/") or "." in path.rsplit("/", 1)[-1]:
                    self._send(404, b"Not found", "text/plain", NO_CACHE)
                    return
                target = app.dist / "index.html"  # a route of the app
            kind = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in ("application/json", "application/manifest+json"):
                kind += "; charset=utf-8"
            cache = IMMUTABLE if path.startswith("/assets/") else NO_CACHE
            self._send(200, target.read_bytes(), kind, cache)

        def do_HEAD(self) -> None:  # http.server's naming
            self.do_GET()

    return Handler
