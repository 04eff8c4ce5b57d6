"""Interactive API docs for ``make run``: Swagger UI over the local stack's own OpenAPI document.

    GET /docs            the explorer (try any operation against this stack; X-Device-Id is filled in)
    GET /docs/<asset>    Swagger UI's script and stylesheet, from the pinned ``swagger-ui-py`` wheel

Nothing is fetched from the internet: the assets are files of an installed package, and the
spec validator Swagger UI would call online is turned off. Only the local stack serves this; a
deployed API Gateway has no ``/docs`` route.
"""

from __future__ import annotations

import json
from pathlib import Path

ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
DEVICE = "my-device-0001"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Parley API - local stack</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    const ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      tryItOutEnabled: true,
      validatorUrl: null,
      persistAuthorization: true,
      onComplete: () => ui.preauthorizeApiKey("deviceId", __DEVICE__),
    });
  </script>
</body>
</html>
"""


def static_dir() -> Path:
    import swagger_ui  # swagger-ui-py: only its static files are used

    return Path(swagger_ui.__file__).resolve().parent / "static"


def page() -> bytes:
    return PAGE.replace("__DEVICE__", json.dumps(DEVICE)).encode()


def asset(name: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of one of Swagger UI's files, or None for anything else."""
    if name not in ASSETS:
        return None
    return ASSETS[name], (static_dir() / name).read_bytes()
