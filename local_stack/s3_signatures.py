"""S3 in the local stack checks presigned uploads as S3 does.

moto stores whatever a presigned URL receives: another ``Content-Type``, another size, an expired
URL, a forged signature. S3 refuses all of them, and Parley's upload contracts rely on that
("S3 refuses anything else"). While ``strict_s3(secrets)`` is active (the local stack keeps it on):

- a request carrying a query-string signature (``X-Amz-Signature``) is checked with
  ``sigv4.verify_presigned_url``: the signature is computed over the headers the client really sent,
  so a different ``Content-Type`` or ``Content-Length`` than the signed one is ``403
  SignatureDoesNotMatch``; an expired URL is ``403 AccessDenied``;
- a browser POST upload (``policy`` form field) needs a valid policy signature, an unexpired policy,
  every condition met (``403 AccessDenied``, "Invalid according to Policy"), no form field the policy
  does not cover, and a file inside ``content-length-range`` (``400 EntityTooLarge`` /
  ``EntityTooSmall``).

Requests signed in the ``Authorization`` header (the SDKs' own calls) are left to moto.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from unittest import mock
from xml.sax.saxutils import escape

from .sigv4 import SignatureProblem, verify_post_policy, verify_presigned_url

_STATUS = {"SignatureDoesNotMatch": 403, "AccessDenied": 403, "InvalidAccessKeyId": 403,
           "AuthorizationQueryParametersError": 400, "EntityTooLarge": 400, "EntityTooSmall": 400,
           "InvalidArgument": 400, "InvalidPolicyDocument": 400}
_NOT_IN_POLICY = {"policy", "x-amz-signature", "file"}


def s3_error(problem: SignatureProblem) -> tuple[int, dict[str, str], str]:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(problem.code)}</Code><Message>{escape(problem.message)}</Message>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>")
    return _STATUS.get(problem.code, 403), {"Content-Type": "application/xml"}, body


def _headers(request: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in request.headers.items()}


def _raw_path_and_query(request: Any) -> tuple[str, str]:
    raw_url = str(getattr(request, "raw_url", "") or getattr(request, "url", ""))
    after_host = raw_url.split("://", 1)[-1]
    path_and_query = after_host[after_host.find("/"):] if "/" in after_host else "/"
    path, _, query = path_and_query.partition("?")
    return path, query


def check_presigned_url(request: Any, secrets: Mapping[str, str]) -> SignatureProblem | None:
    if request.method == "OPTIONS":  # a browser's CORS preflight carries the URL but is not signed
        return None
    headers = _headers(request)
    if any(k.lower() == "authorization" for k in headers):
        return None
    path, query = _raw_path_and_query(request)
    if "X-Amz-Signature=" not in query:
        return None
    try:
        verify_presigned_url(method=request.method, raw_path=path, raw_query=query, headers=headers,
                             secrets=secrets, service="s3")
    except SignatureProblem as problem:
        return problem
    return None


def _policy_failed(condition: Any) -> SignatureProblem:
    return SignatureProblem("AccessDenied",
                            f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")


def check_post_policy(fields: Mapping[str, str], file_size: int, bucket: str, secrets: Mapping[str, str],
                      now: datetime | None = None) -> SignatureProblem | None:
    """The checks S3 makes of a browser-based (POST) upload, in its order."""
    lowered = {k.lower(): v for k, v in fields.items()}
    policy_b64 = lowered.get("policy", "")
    try:
        verify_post_policy(policy_b64=policy_b64, fields=lowered, secrets=secrets)
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
        expiration = datetime.strptime(str(policy["expiration"])[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=UTC)
        conditions = list(policy["conditions"])
    except SignatureProblem as problem:
        return problem
    except (ValueError, KeyError, TypeError, binascii.Error):
        return SignatureProblem("InvalidPolicyDocument", "Invalid Policy: the policy is not a signed policy document.")
    if (now or datetime.now(UTC)) > expiration:
        return SignatureProblem("AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**lowered, "bucket": bucket}
    covered: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            for name, wanted in condition.items():
                covered.add(name.lower())
                if values.get(name.lower()) != str(wanted):
                    return _policy_failed(condition)
        elif isinstance(condition, list) and len(condition) == 3:
            operator = str(condition[0]).lower()
            if operator == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if file_size > high:
                    return SignatureProblem("EntityTooLarge",
                                            f"Your proposed upload exceeds the maximum allowed size ({high} bytes).")
                if file_size < low:
                    return SignatureProblem("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                                                              f"allowed size ({low} bytes).")
                continue
            name = str(condition[1]).lstrip("$").lower()
            covered.add(name)
            found = values.get(name, "")
            if (operator == "eq" and found != str(condition[2])) or \
                    (operator == "starts-with" and not found.startswith(str(condition[2]))):
                return _policy_failed(condition)
    extra = sorted(k for k in lowered if k not in covered and k not in _NOT_IN_POLICY and not k.startswith("x-ignore-"))
    if extra:
        return SignatureProblem("AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")
    return None


def _form_fields_and_size(request: Any) -> tuple[dict[str, str], int] | None:
    form = getattr(request, "form", None)
    if form is None or "policy" not in {str(k).lower() for k in form}:
        return None
    fields = {str(k): str(v) for k, v in form.items()}
    size = 0
    files = getattr(request, "files", None)
    if files and "file" in files:
        stream = files["file"].stream
        position = stream.tell()
        stream.seek(0, 2)
        size = stream.tell() - position
        stream.seek(position)
    elif "file" in fields:
        size = len(fields["file"].encode())
    return fields, size


@contextlib.contextmanager
def strict_s3(secrets: Mapping[str, str]) -> Iterator[None]:
    """moto's S3 refusing presigned requests S3 would refuse (the module docstring)."""
    from moto.s3.responses import S3Response

    original_key = S3Response.key_response
    original_bucket = S3Response.bucket_response

    def key_response(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        problem = check_presigned_url(request, secrets)
        if problem is not None:
            return s3_error(problem)
        return original_key(self, request, full_url, headers)

    def bucket_response(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        problem = check_presigned_url(request, secrets)
        if problem is None and request.method == "POST":
            found = _form_fields_and_size(request)
            if found is not None:
                bucket = _raw_path_and_query(request)[0].strip("/").split("/")[0]
                problem = check_post_policy(found[0], found[1], bucket, secrets)
        if problem is not None:
            return s3_error(problem)
        return original_bucket(self, request, full_url, headers)

    with mock.patch.object(S3Response, "key_response", key_response), \
            mock.patch.object(S3Response, "bucket_response", bucket_response):
        yield


def attach(local: Any, resources: contextlib.ExitStack) -> None:
    """Keep S3 strict while the local stack runs; its functions sign with these credentials."""
    import os

    secrets = {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]}
    resources.enter_context(strict_s3(secrets))
