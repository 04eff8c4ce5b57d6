"""Who is calling: the owner partition for a request, decided by the API's Lambda authorizer.

Two modes, chosen by the ``AuthMode`` template parameter:

- ``cognito``: ``Authorization: Bearer <JWT>`` (the ``Bearer`` scheme is required) issued by the
  stack's Cognito user pool. The signature is checked against the pool's JWKS (RS256, cached; see
  ``Authenticator``), and so are the issuer, expiry, token use and client id. The owner is
  ``USER#<sub>``.
- ``device``: the seed's device-based MVP. ``X-Device-Id`` must look like a device id the app
  generated (8-64 of ``A-Z a-z 0-9 _ -``); the owner is ``DEVICE#<id>``.

One authorizer serves both modes because SAM cannot pick an API's default authorizer from a
parameter; the choice is the function's ``AUTH_MODE`` instead.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from parley.core.config import AuthorizerEnv
from parley.core.errors import Unauthorized
from parley.core.observability import OwnerHasher, logger

DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
JwksFetcher = Callable[[str], dict[str, Any]]
JWKS_REFETCH_SECONDS = 60.0  # at most one JWKS fetch a minute for key ids the cache does not know


def fetch_jwks(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - fixed https Cognito URL
        return json.loads(response.read())  # type: ignore[no-any-return]


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value or ""
    return ""


class Authenticator:
    """Decides the owner of a request. In cognito mode the pool's signing keys (JWKS) are fetched
    once and cached for the execution environment. A token naming a key id the cache does not know
    may mean the pool rotated its keys, so the JWKS is fetched again — but at most once every
    ``refetch_seconds``, however many such tokens arrive (a forged ``kid`` cannot make the
    authorizer hammer Cognito), and a key id that was missing after the last fetch is refused at
    once until then. A JWKS that cannot be fetched or read makes the token unverifiable: 401, never
    a crash."""

    def __init__(self, env: AuthorizerEnv, *, jwks_fetcher: JwksFetcher = fetch_jwks,
                 refetch_seconds: float = JWKS_REFETCH_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.env = env
        self._fetch = jwks_fetcher
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None  # the last fetch attempt, successful or not
        self.refetch_seconds = refetch_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self.fetches = 0  # JWKS fetch attempts (tests, metrics)

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
        with self._lock:
            if kid not in self._keys and self._may_refetch():
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("The token was not signed by this user pool.")
        return key

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.refetch_seconds

    def _refresh(self) -> None:
        import jwt  # loaded only in cognito mode

        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            jwks = self._fetch(f"{self.issuer}/.well-known/jwks.json")
            keys = {str(k["kid"]): jwt.PyJWK(k).key for k in jwks.get("keys", [])}
        except Exception as exc:  # unreachable, not JSON, not a JWKS: keep the keys we had
            logger.warning("The user pool's JWKS could not be fetched", extra={"error": type(exc).__name__})
            if not self._keys:
                raise Unauthorized("The token cannot be verified right now; sign in again shortly.") from exc
            return
        self._keys = keys

    def _verify(self, authorization: str) -> str:
        import jwt

        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send the Cognito token as Authorization: Bearer <token>.")
        token = token.strip()
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
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


class RequestAuthorizer:
    """The answer of a REQUEST authorizer (the REST API's and the WebSocket API's ``$connect``) to API
    Gateway: an Allow policy for ``resource`` with the owner and its keyed hash in the context, or
    the one exception, ``Unauthorized``, that API Gateway turns into a 401 (on ``$connect``: a
    refused upgrade). The hash, never the owner, is the ``principalId`` API Gateway may log."""

    def __init__(self, env: AuthorizerEnv, *, what: str) -> None:
        self.authenticator = Authenticator(env)
        self.owner_hash = OwnerHasher(env.owner_hash_secret)
        self.what = what  # the log's name for what was refused: "Request", "WebSocket connect"

    def answer(self, headers: Mapping[str, str] | None, resource: str) -> dict[str, Any]:
        try:
            owner = self.authenticator.owner(headers)
        except Unauthorized as exc:
            logger.info(f"{self.what} not authorized", extra={"reason": exc.message})
            raise Exception("Unauthorized") from None  # API Gateway's 401 is for exactly this message
        hashed = self.owner_hash(owner)
        logger.append_keys(owner_hash=hashed)
        return {
            "principalId": hashed,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}],
            },
            "context": {"owner": owner, "ownerHash": hashed},
        }
