"""API Gateway REQUEST authorizer: decides the owner of the request (see ``parley.core.auth``)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core.auth import Authenticator
from parley.core.config import AuthorizerEnv
from parley.core.errors import Unauthorized
from parley.core.observability import OwnerHasher, logger

ENV = AuthorizerEnv.load(os.environ)
AUTH = Authenticator(ENV)
OWNER_HASH = OwnerHasher(ENV.owner_hash_secret)


def _api_wide(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:api/stage/VERB/path -> .../api/stage/*/* ."""
    prefix = method_arn.split("/", 2)
    return f"{prefix[0]}/{prefix[1]}/*/*" if len(prefix) >= 2 else method_arn


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        owner = AUTH.owner(event.get("headers"))
    except Unauthorized as exc:
        logger.info("Request not authorized", extra={"reason": exc.message})
        raise Exception("Unauthorized") from None  # API Gateway answers 401 to exactly this message
    hashed = OWNER_HASH(owner)
    logger.append_keys(owner_hash=hashed)
    return {
        "principalId": hashed,  # what API Gateway may log: the hash, never the owner
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow",
                           "Resource": _api_wide(event.get("methodArn", "*"))}],
        },
        "context": {"owner": owner, "ownerHash": hashed},
    }
