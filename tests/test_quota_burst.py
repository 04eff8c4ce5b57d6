"""A burst of chat requests at the quota limit, as concurrent Lambda execution environments would
send them: the month ends at most one reservation over its limit (docs/security.md states the bound).

Each thread is its own execution environment: the chat function's ``app.py`` loaded afresh (its
own resolver and globals), as Lambda runs one invocation per environment at a time."""

from __future__ import annotations

import importlib.util
import json
import threading
import uuid
from typing import Any

import boto3

from local_stack.bus import BusRelay
from local_stack.lambdas import FunctionRunner, LambdaContext, environment
from parley.ai.metering import request_bound
from parley.ai.offline import OfflineProvider
from parley.ai.types import AiRequest
from parley.core.ids import utcnow
from parley.data import keys
from parley.tutor.chat import Chat
from parley.usage.pricing import DEFAULT_PRICES
from parley.usage.quota import month_of
from tests.conftest import atomic_dynamodb

ENVIRONMENTS = 20
LIMIT = 2_000
MESSAGE = "Yesterday I went to the market and bought some apples."


def chat_environment(runner: FunctionRunner, index: int) -> Any:
    """A fresh execution environment of the chat function: its module, imported (cold start)."""
    spec = runner.spec("ChatFunction")
    path = spec.code_uri / "app.py"
    loader = importlib.util.spec_from_file_location(f"chat_environment_{index}", path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def chat_event(owner: str) -> dict[str, Any]:
    return {"resource": "/chat", "path": "/chat", "httpMethod": "POST",
            "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
            "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
            "body": json.dumps({"message": MESSAGE}), "isBase64Encoded": False,
            "requestContext": {"resourcePath": "/chat", "httpMethod": "POST", "path": "/test/chat",
                               "requestId": str(uuid.uuid4()),
                               "authorizer": {"principalId": owner, "owner": owner}}}


def test_twenty_environments_at_the_limit_answer_once_and_stay_within_one_reservation(
        runner: FunctionRunner, aws: dict[str, str], bus: BusRelay) -> None:
    # Given an owner with a monthly limit of LIMIT tokens, one token short of it
    owner = f"DEVICE#burst-{uuid.uuid4().hex[:12]}"
    table = boto3.resource("dynamodb").Table(aws["Table"])
    table.put_item(Item={"PK": owner, "SK": keys.QUOTA_SK, "monthlyTokens": LIMIT, "monthlyCostUsd": 0})
    table.put_item(Item={"PK": owner, "SK": keys.usage_month_sk(month_of(utcnow())), "type": "USAGE_MONTH",
                         "totalTokens": LIMIT - 1, "committedTokens": LIMIT - 1,
                         "estimatedCostUsd": 0, "committedCostUnits": 0})
    statuses: list[int] = []
    spec = runner.spec("ChatFunction")
    with environment(runner.env_for(spec)):
        environments = [chat_environment(runner, i) for i in range(ENVIRONMENTS)]
        start = threading.Barrier(ENVIRONMENTS)

        def invoke(module: Any) -> None:
            context = LambdaContext(function_name=spec.name, timeout_seconds=spec.timeout)
            start.wait()
            statuses.append(module.handler(chat_event(owner), context)["statusCode"])

        # When all of them ask at once (DynamoDB applies conditional writes to one item one at a time)
        with atomic_dynamodb():
            threads = [threading.Thread(target=invoke, args=(module,)) for module in environments]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    bus.pump()  # the usage events reach the recorder, which settles the reservations
    # Then one was answered and the others refused, and usage is within one reservation of the limit
    assert sorted(statuses) == [200] + [429] * (ENVIRONMENTS - 1), statuses
    month = table.get_item(Key={"PK": owner, "SK": keys.usage_month_sk(month_of(utcnow()))})["Item"]
    chat = Chat(None, OfflineProvider(), publisher=None, quota=None,  # type: ignore[arg-type]
                max_tokens=int(runner.env_for(spec).get("CHAT_MAX_TOKENS", 300)), temperature=0.7,
                history_tokens=540)
    request: AiRequest = chat.build_request(_persona(), [], MESSAGE)[0]
    bound = request_bound(request, [("offline", "parley-offline-1")], DEFAULT_PRICES).tokens
    used = int(month["totalTokens"])
    print(f"\nburst: {ENVIRONMENTS} requests, {statuses.count(200)} answered, {used} tokens used of {LIMIT} "
          f"(overshoot {used - LIMIT}, bound {bound})")
    assert LIMIT <= used <= LIMIT - 1 + bound
    assert month["committedTokens"] == month["totalTokens"]
    assert not [name for name in month if name.startswith("reservation#")]


def _persona() -> Any:
    from parley.tutor.persona import TutorPersona

    return TutorPersona("Emma", "US", "intermediate", "daily")
