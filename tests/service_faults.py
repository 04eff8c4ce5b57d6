"""Faults raised below the SDK: the services' own error responses, on the wire botocore reads.

``ServiceFaults`` wraps moto's ``before-send`` hook (the one place every boto3 client in the process
— our handlers' and the Step Functions interpreter's — hands its HTTP request to the emulator) and,
for a request that matches a ``Fault``, answers what the service answers when it fails: the
status, headers and body of that service's protocol (JSON ``__type``, REST-XML ``<Error>``,
Lambda's ``X-Amz-Function-Error``). botocore parses it into its own ``ClientError`` with the real
code, and retries it as it would in AWS (standard mode, ``parley.core.clients``' attempts); Step
Functions names it as it names a service's error (``DynamoDb.ProvisionedThroughputExceededException``,
``Lambda.TooManyRequestsException``, ``S3.S3Exception``...).

A fault matches a service and operation (``dynamodb``/``UpdateItem``), optionally only while one of
the template's functions runs (``function=``, by logical id) and only for requests whose body or URL
contains ``key`` (e.g. ``TRANSCRIPTION#``). ``times`` bounds how often it fires (``None``: always).
``after=True`` lets the call through first and loses its answer: the service did the work, the
caller sees the failure (a Lambda that timed out after its writes, a response lost on the way).

botocore sleeps between its retries; inside ``installed()`` the sleep is skipped (recorded in
``slept``) so the tests never wait.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

# (HTTP status, message) of each error code the matrix injects, as the services answer them.
ERRORS: dict[str, tuple[int, str]] = {
    # DynamoDB
    "ProvisionedThroughputExceededException": (400, "The level of configured provisioned throughput for the table "
                                                    "was exceeded. Consider increasing your provisioning level."),
    "ThrottlingException": (400, "Rate of requests exceeds the allowed throughput."),
    "RequestLimitExceeded": (400, "Throughput exceeds the current throughput limit for your account."),
    "InternalServerError": (500, "Internal server error"),
    # Transcribe
    "LimitExceededException": (400, "You have exceeded the maximum request rate. Wait and try again."),
    "InternalFailureException": (500, "We can't process the request because of a server error. Try again later."),
    "BadRequestException": (400, "The requested job is in progress; it can't be deleted yet."),
    # S3
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "SlowDown": (503, "Please reduce your request rate."),
    # Lambda (the Invoke API itself)
    "TooManyRequestsException": (429, "Rate Exceeded."),
    "ServiceException": (500, "An internal error occurred in the Lambda service."),
    # EventBridge
    "InternalException": (500, "An internal error occurred."),
    # (ThrottlingException above is also what a throttled PutEvents entry carries.)
}
# Function errors: Lambda answers 200 with X-Amz-Function-Error and the runtime's error document.
FUNCTION_ERRORS = {"Sandbox.Timedout": "Task timed out after 60.00 seconds"}
_JSON_PROTOCOL = {"dynamodb": "application/x-amz-json-1.0", "transcribe": "application/x-amz-json-1.1",
                  "eventbridge": "application/x-amz-json-1.1", "sfn": "application/x-amz-json-1.0",
                  "sqs": "application/x-amz-json-1.0"}


@dataclass
class Fault:
    service: str  # botocore's event name for it: dynamodb, s3, transcribe, lambda, eventbridge
    operation: str  # UpdateItem, TransactWriteItems, StartTranscriptionJob, Invoke, PutEvents...
    code: str  # a key of ERRORS or FUNCTION_ERRORS
    times: int | None = 1  # how many matching calls fail; None: every one
    function: str | None = None  # only while this function of the template runs (its name)
    key: str | None = None  # only requests whose URL or body contains this text
    after: bool = False  # let the call through, then lose its answer
    entry: bool = False  # PutEvents: the call succeeds but its entry fails with ``code`` (FailedEntryCount 1)
    hits: int = 0

    def matches(self, service: str, operation: str, request: AWSPreparedRequest, running: str | None) -> bool:
        if (service, operation) != (self.service, self.operation):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if self.function is not None and self.function != running:
            return False
        if self.key is not None:
            body = request.body or b""
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            if self.key not in text and self.key not in str(request.url):
                return False
        return True


def _current_function() -> str | None:
    """The name of the template's function this thread is running, if any (local_stack.lambdas
    keeps each invocation's environment per thread)."""
    from local_stack import lambdas

    stack = getattr(lambdas._TURN, "stack", [])
    return stack[-1].get("AWS_LAMBDA_FUNCTION_NAME") if stack else None


def error_response(service: str, code: str, url: str, *, entry: bool = False) -> AWSResponse:
    """What ``service`` answers when it fails with ``code`` (for ``entry``: a PutEvents whose entry failed)."""
    if entry:
        body = json.dumps({"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": ERRORS[code][1]}]})
        return AWSResponse(url, 200, {"Content-Type": "application/x-amz-json-1.1"},  # type: ignore[arg-type]
                           MockRawResponse(body))
    if code in FUNCTION_ERRORS:
        body = json.dumps({"errorType": code, "errorMessage": FUNCTION_ERRORS[code]})
        headers = {"X-Amz-Function-Error": "Unhandled", "Content-Type": "application/json",
                   "X-Amz-Executed-Version": "$LATEST"}
        return AWSResponse(url, 200, headers, MockRawResponse(body))  # type: ignore[arg-type]
    status, message = ERRORS[code]
    if service == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                "<RequestId>FAULT</RequestId><HostId>fault</HostId></Error>")
        headers = {"Content-Type": "application/xml", "x-amz-request-id": "FAULT", "x-amz-id-2": "fault"}
        return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]
    if service == "lambda":
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json", "x-amzn-RequestId": "FAULT"}
        body = json.dumps({"Type": "Service" if status >= 500 else "User", "message": message})
        return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]
    content_type = _JSON_PROTOCOL.get(service, "application/x-amz-json-1.1")
    body = json.dumps({"__type": code, "message": message})
    return AWSResponse(url, status, {"Content-Type": content_type, "x-amzn-RequestId": "FAULT"},  # type: ignore[arg-type]
                       MockRawResponse(body))


@dataclass
class ServiceFaults:
    """The active faults, and what they did (see the module docstring)."""

    faults: list[Fault] = field(default_factory=list)
    fired: list[tuple[str, str, str]] = field(default_factory=list)  # (service, operation, code)
    slept: list[float] = field(default_factory=list)
    # Called with (service, operation, request body) after a call the emulator answered (no fault).
    observers: list[Callable[[str, str, str], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *faults: Fault) -> ServiceFaults:
        with self._lock:
            self.faults.extend(faults)
        return self

    def clear(self) -> None:
        """No fault any more (what fired stays recorded until ``reset``)."""
        with self._lock:
            self.faults.clear()

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.fired.clear()

    def _match(self, service: str, operation: str, request: AWSPreparedRequest) -> Fault | None:
        running = _current_function()
        with self._lock:
            for fault in self.faults:
                if fault.matches(service, operation, request, running):
                    fault.hits += 1
                    self.fired.append((service, operation, fault.code))
                    return fault
        return None

    @contextlib.contextmanager
    def installed(self) -> Iterator[ServiceFaults]:
        original = BotocoreStubber.__call__
        faults = self

        def call(stubber: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any
                 ) -> AWSResponse | None:
            parts = event_name.split(".")
            service, operation = (parts[1], parts[2]) if len(parts) >= 3 else ("", "")
            fault = faults._match(service, operation, request) if stubber.enabled else None
            if fault is None:
                answer = original(stubber, event_name, request, **kwargs)
                if stubber.enabled and faults.observers:
                    body = request.body or b""
                    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
                    for observe in list(faults.observers):
                        observe(service, operation, text)
                return answer
            if fault.after:
                original(stubber, event_name, request, **kwargs)
            return error_response(service, fault.code, str(request.url), entry=fault.entry)

        from botocore import endpoint

        with mock.patch.object(BotocoreStubber, "__call__", call), \
                mock.patch.object(endpoint, "time", SimpleNamespace(sleep=self.slept.append,
                                                                     time=endpoint.time.time)):
            yield self
