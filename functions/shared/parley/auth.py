"""Who is calling: the owner partition for a request, decided by the API's Lambda authorizer.

Two modes, chosen by the ``AuthMode`` template parameter:

- ``cognito``: ``Authorization: Bearer <JWT>`` issued by the stack's Cognito user pool. The
  signature is checked against the pool's JWKS (RS256), and so are the issuer, expiry, token use
  and client id. The owner is ``USER#<sub>``.
- ``device``: the seed's device-based MVP. ``X-Device-Id`` must look like a device id the app
  generated (8-64 of ``A-Z a-z 0-9 _ -``); the owner is ``DEVICE#<id>``.

One authorizer serves both modes because SAM cannot pick an API's default authorizer from a
parameter; the choice is the function's ``AUTH_MODE`` instead.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .config import AuthorizerEnv
from .errors import Unauthorized

DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
JwksFetcher = Callable[[str], dict[str, Any]]


def fetch_jwks(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - fixed https Cognito URL
        return json.loads(response.read())  # type: ignore[no-any-return]


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value or ""
    return ""


class Authenticator:
    def __init__(self, env: AuthorizerEnv, *, jwks_fetcher: JwksFetcher = fetch_jwks) -> None:
        self.env = env
        self._fetch = jwks_fetcher
        self._keys: dict[str, Any] = {}

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.env.region}.amazonaws.com/{self.env.user_pool_id}"

    def owner(self, headers: Mapping[str, str] | None) -> str:
        if self.env.auth_mode == "device":
            device_id = _header(headers, "X-Device-Id").strip()
            if not DEVICE_ID.match(device_id):
                raise Unauthorized("X-Device-Id is missing or malformed (8-64 of A-Z a-z 0-9 _ -).")
            return f"DEVICE#{device_id}"
        return f"USER#{self._verify(_header(headers, 'Authorization'))}"

    def _signing_key(self, kid: str) -> Any:
        if kid not in self._keys:  # unknown kid: the pool may have rotated keys, fetch once more
            import jwt  # loaded only in cognito mode

            jwks = self._fetch(f"{self.issuer}/.well-known/jwks.json")
            self._keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks.get("keys", [])}
        if kid not in self._keys:
            raise Unauthorized("The token was not signed by this user pool.")
        return self._keys[kid]

    def _verify(self, authorization: str) -> str:
        import jwt

        token = authorization.removeprefix("Bearer ").strip()
        if not token:
            raise Unauthorized("Authorization header with a Cognito token is required.")
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            claims = jwt.decode(token, self._signing_key(kid), algorithms=["RS256"], issuer=self.issuer,
                                options={"verify_aud": False, "require": ["exp", "iss", "sub", "token_use"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The token is not valid: {exc}.") from exc
        use = claims.get("token_use")
        client = claims.get("client_id") if use == "access" else claims.get("aud")
        if use not in ("access", "id") or client != self.env.user_pool_client_id:
            raise Unauthorized("The token was not issued to this app.")
        return str(claims["sub"])


def connect_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Headers to authenticate a $connect with: the real headers, plus the query string's
    ``deviceId`` (as X-Device-Id) and ``token`` (as Authorization: Bearer) — browsers cannot set
    headers on a WebSocket. Only the $connect authorizer uses this; REST never reads the query."""
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    lower = {k.lower() for k in headers}
    query = event.get("queryStringParameters") or {}
    if query.get("deviceId") and "x-device-id" not in lower:
        headers["X-Device-Id"] = str(query["deviceId"])
    if query.get("token") and "authorization" not in lower:
        headers["Authorization"] = f"Bearer {query['token']}"
    return headers
