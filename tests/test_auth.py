"""The Cognito authorizer: tokens verified against the pool's JWKS, which is cached; unknown key ids
cannot make it fetch more than once a minute; an unverifiable token is a 401, never a crash."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from parley.core.auth import Authenticator
from parley.core.config import AuthorizerEnv
from parley.core.errors import Unauthorized

REGION, POOL, CLIENT = "us-east-1", "us-east-1_TestPool1", "client-abc123"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
ENV = AuthorizerEnv.load({"AUTH_MODE": "cognito", "USER_POOL_ID": POOL, "USER_POOL_CLIENT_ID": CLIENT,
                          "AWS_REGION": REGION})
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FORGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(private: Any, kid: str) -> dict[str, Any]:
    return {**jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid, "alg": "RS256",
            "use": "sig"}


def token(private: Any = KEY, kid: str = "pool-key-1", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "user-123", "iss": ISSUER, "token_use": "access", "client_id": CLIENT, "iat": now,
            "exp": now + 600, **claims}
    return jwt.encode(body, private, algorithm="RS256", headers={"kid": kid})


class Jwks:
    """The pool's JWKS endpoint: counts fetches, can fail."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.fail: Exception | None = None

    def __call__(self, url: str) -> dict[str, Any]:
        assert url == f"{ISSUER}/.well-known/jwks.json"
        self.fetches += 1
        if self.fail is not None:
            raise self.fail
        return {"keys": self.keys}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authenticator(jwks: Jwks, clock: Clock | None = None) -> Authenticator:
    return Authenticator(ENV, jwks_fetcher=jwks, clock=clock or Clock())


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_a_valid_token_is_its_user_and_the_jwks_is_fetched_once() -> None:
    jwks = Jwks(jwk(KEY, "pool-key-1"))
    auth = authenticator(jwks)
    assert auth.owner(bearer(token())) == "USER#user-123"
    assert auth.owner({"authorization": f"bearer {token(sub='user-456')}"}) == "USER#user-456"  # any case
    assert jwks.fetches == 1


def test_twenty_forged_key_ids_cost_at_most_one_fetch_a_minute() -> None:
    # Given a warm authorizer
    jwks, clock = Jwks(jwk(KEY, "pool-key-1")), Clock()
    auth = authenticator(jwks, clock)
    auth.owner(bearer(token()))
    clock.now += 61
    # When twenty tokens arrive, each naming a key id the pool never had
    for _ in range(20):
        with pytest.raises(Unauthorized):
            auth.owner(bearer(token(FORGER, kid=f"forged-{uuid.uuid4().hex[:8]}")))
    # Then the JWKS was fetched once more in all, and a real token still passes without a fetch
    assert jwks.fetches == 2
    assert auth.owner(bearer(token())) == "USER#user-123" and jwks.fetches == 2
    # and a minute later a new key id (a rotation) is looked up again
    jwks.keys.append(jwk(KEY, "pool-key-2"))
    clock.now += 61
    assert auth.owner(bearer(token(kid="pool-key-2"))) == "USER#user-123" and jwks.fetches == 3


def test_a_jwks_that_cannot_be_fetched_is_a_401_not_a_crash() -> None:
    jwks, clock = Jwks(jwk(KEY, "pool-key-1")), Clock()
    jwks.fail = TimeoutError("cognito did not answer")
    auth = authenticator(jwks, clock)
    with pytest.raises(Unauthorized):
        auth.owner(bearer(token()))
    with pytest.raises(Unauthorized):  # and the failure is not retried on every request
        auth.owner(bearer(token()))
    assert jwks.fetches == 1
    jwks.fail, clock.now = None, clock.now + 61
    assert auth.owner(bearer(token())) == "USER#user-123"


def test_a_malformed_jwks_is_a_401() -> None:
    jwks = Jwks({"kid": "pool-key-1", "kty": "RSA", "n": "not base64!", "e": "AQAB"})
    with pytest.raises(Unauthorized):
        authenticator(jwks).owner(bearer(token()))


@pytest.mark.parametrize("header", [
    "",  # nothing
    "Token {token}",  # another scheme
    "{token}",  # no scheme at all
    "Bearer",  # a scheme without a token
    "Basic dXNlcjpwYXNz",
])
def test_the_bearer_scheme_is_required(header: str) -> None:
    jwks = Jwks(jwk(KEY, "pool-key-1"))
    with pytest.raises(Unauthorized):
        authenticator(jwks).owner({"Authorization": header.format(token=token())})


@pytest.mark.parametrize("claims", [
    {"iss": "https://cognito-idp.us-east-1.amazonaws.com/someone-else"},
    {"client_id": "another-app"},
    {"token_use": "refresh"},
    {"exp": int(time.time()) - 10},
])
def test_tokens_of_another_pool_app_or_use_or_expired_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        authenticator(Jwks(jwk(KEY, "pool-key-1"))).owner(bearer(token(**claims)))


def test_a_token_signed_by_another_key_under_the_pools_key_id_is_refused() -> None:
    with pytest.raises(Unauthorized):
        authenticator(Jwks(jwk(KEY, "pool-key-1"))).owner(bearer(token(FORGER, kid="pool-key-1")))


def test_the_authorizer_answers_unauthorized_when_the_jwks_is_down(monkeypatch: pytest.MonkeyPatch,
                                                                   runner: Any, aws: dict[str, str]) -> None:
    """Through the function: API Gateway's 401 ("Unauthorized"), not a crash (500)."""
    module = runner.module("AuthorizerFunction")
    jwks = Jwks()
    jwks.fail = OSError("network unreachable")
    monkeypatch.setattr(module.AUTHORIZER, "authenticator", Authenticator(ENV, jwks_fetcher=jwks))
    event = {"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/test/GET/settings",
             "headers": bearer(token())}
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        runner.invoke("AuthorizerFunction", event)
