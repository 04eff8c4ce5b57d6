"""API Gateway REQUEST authorizer: decides the owner of the request (see ``parley.core.auth``)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core.auth import RequestAuthorizer
from parley.core.config import AuthorizerEnv
from parley.core.observability import logger

ENV = AuthorizerEnv.load(os.environ)
AUTHORIZER = RequestAuthorizer(ENV, what="Request")
OWNER_HASH = AUTHORIZER.owner_hash


def _api_wide(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:api/stage/VERB/path -> .../api/stage/*/* (the answer is
    cached per token for the whole API, so it must allow every route)."""
    prefix = method_arn.split("/", 2)
    return f"{prefix[0]}/{prefix[1]}/*/*" if len(prefix) >= 2 else method_arn


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return AUTHORIZER.answer(event.get("headers"), _api_wide(event.get("methodArn", "*")))
