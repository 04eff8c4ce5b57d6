"""WebSocket $connect REQUEST authorizer: the same owner rules as the REST API's authorizer.

Browsers cannot set headers on a WebSocket, so on $connect (only) the credentials may come in the
query string: ``?deviceId=<id>`` in device mode, ``?token=<Cognito JWT>`` in cognito mode. Headers
(X-Device-Id, Authorization) work too, for clients that can send them.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core.auth import RequestAuthorizer, connect_headers
from parley.core.config import AuthorizerEnv
from parley.core.observability import logger

ENV = AuthorizerEnv.load(os.environ)
AUTHORIZER = RequestAuthorizer(ENV, what="WebSocket connect")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return AUTHORIZER.answer(connect_headers(event), event["methodArn"])
