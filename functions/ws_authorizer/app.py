"""WebSocket $connect REQUEST authorizer: the same owner rules as the REST API's authorizer.

Browsers cannot set headers on a WebSocket, so on $connect (only) the credentials may come in the
query string: ``?deviceId=<id>`` in device mode, ``?token=<Cognito JWT>`` in cognito mode. Headers
(X-Device-Id, Authorization) work too, for clients that can send them.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core.auth import Authenticator, connect_headers
from parley.core.config import AuthorizerEnv
from parley.core.errors import Unauthorized
from parley.core.observability import OwnerHasher, logger

ENV = AuthorizerEnv.load(os.environ)
AUTH = Authenticator(ENV)
OWNER_HASH = OwnerHasher(ENV.owner_hash_secret)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        owner = AUTH.owner(connect_headers(event))
    except Unauthorized as exc:
        logger.info("WebSocket connect not authorized", extra={"reason": exc.message})
        raise Exception("Unauthorized") from None  # API Gateway refuses the upgrade with 401
    hashed = OWNER_HASH(owner)
    logger.append_keys(owner_hash=hashed)
    return {
        "principalId": hashed,  # what API Gateway may log: the hash, never the owner
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
        },
        "context": {"owner": owner, "ownerHash": hashed},
    }
