"""The emulated AWS under a browser's concurrency.

moto keeps each service's state in plain dicts and iterates them without a lock: a DynamoDB scan or
query (``Table.all_items`` walks ``table.items``) while another request puts an item with a new key
raises ``RuntimeError: dictionary changed size during iteration`` - a 500 to the caller, which is
what ``make fuzz`` logged. The same holds for S3 listings, SQS queues, EventBridge rules and
Transcribe's job list. The local stack serves its functions, its background clocks (bus relay,
Transcribe) and a browser's parallel requests from many threads at once, so it serialises every call
into these services' backends with one re-entrant lock.

Not serialised: backends whose calls can wait for another request (Lambda's invoke runs a function
that calls moto again over HTTP; Step Functions runs executions on threads of their own), which
would deadlock behind the lock.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

EMULATOR_LOCK = threading.RLock()
SERIALISED: dict[str, str] = {
    "moto.dynamodb.models": "DynamoDBBackend",
    "moto.s3.models": "S3Backend",
    "moto.sqs.models": "SQSBackend",
    "moto.events.models": "EventsBackend",
    "moto.transcribe.models": "TranscribeBackend",
}


def _locked(method: Callable[..., Any], lock: Any) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return call


@contextlib.contextmanager
def serialised_backends(lock: Any = EMULATOR_LOCK) -> Iterator[None]:
    """Every public method of the ``SERIALISED`` backends runs under ``lock`` while this is active."""
    with contextlib.ExitStack() as patches:
        for module_name, class_name in SERIALISED.items():
            backend = getattr(importlib.import_module(module_name), class_name)
            for name, member in list(vars(backend).items()):
                if not name.startswith("_") and inspect.isfunction(member):
                    patches.enter_context(mock.patch.object(backend, name, _locked(member, lock)))
        yield


def attach(local: Any, resources: contextlib.ExitStack) -> None:
    resources.enter_context(serialised_backends())
