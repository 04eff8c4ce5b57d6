"""Checking AWS Signature Version 4 the way the services do, for the emulator's presigned requests.

moto does not check signatures. The local stack checks the two kinds of presigned request a
client sends it directly, as AWS does:

- a presigned URL (query-string SigV4: ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
  ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature``): the signature is computed again
  over the request as it arrived - method, path, query and the *signed headers with the values the
  client really sent* - so a ``Content-Type`` or ``Content-Length`` other than the signed one no
  longer matches (S3's ``SignatureDoesNotMatch``), and a URL past its expiry is refused;
- an S3 POST policy (browser-based upload): the policy's signature, its expiry and its conditions.

Secrets come from the credentials the local stack gave the functions (it signs with them).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_EXPIRES = 7 * 24 * 3600  # SigV4 presigned URLs last at most 7 days
_SPACES = re.compile(r"\s+")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class SignatureProblem(Exception):
    """Why a presigned request is refused: ``code`` is the service's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Credential:
    access_key: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_credential(value: str) -> Credential:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
        raise SignatureProblem("AuthorizationQueryParametersError",
                               "X-Amz-Credential must be <access key>/<yyyymmdd>/<region>/<service>/aws4_request.")
    return Credential(*parts[:4])


def signing_key(secret: str, credential: Credential) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (credential.date, credential.region, credential.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(secret: str, credential: Credential, string_to_sign: str) -> str:
    return hmac.new(signing_key(secret, credential), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _quote(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted, RFC 3986-encoded ``key=value`` pairs, without the signature itself."""
    encoded = sorted((_quote(k), _quote(v)) for k, v in pairs if k != "X-Amz-Signature")
    return "&".join(f"{k}={v}" for k, v in encoded)


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The query's pairs as sent (``+`` is a literal plus in SigV4, not a space)."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def parse_amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureProblem("AuthorizationQueryParametersError",
                               "X-Amz-Date must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'.") from exc


def verify_presigned_url(*, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                         secrets: Mapping[str, str], service: str, now: datetime | None = None,
                         max_expires: int = MAX_EXPIRES) -> Credential:
    """Check a query-signed request; returns its credential or raises ``SignatureProblem``.

    ``headers`` are the request's headers as received (any case); ``raw_path`` is the path exactly
    as sent (still percent-encoded)."""
    pairs = query_pairs(raw_query)
    params = dict(pairs)
    missing = [k for k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                           "X-Amz-SignedHeaders", "X-Amz-Signature") if not params.get(k)]
    if missing:
        raise SignatureProblem("AuthorizationQueryParametersError",
                               f"Query-string authentication requires {', '.join(missing)}.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SignatureProblem("AuthorizationQueryParametersError", f"X-Amz-Algorithm must be {ALGORITHM}.")
    credential = parse_credential(params["X-Amz-Credential"])
    if credential.service != service:
        raise SignatureProblem("SignatureDoesNotMatch",
                               f"The credential is scoped to {credential.service!r}, not {service!r}.")
    signed_at = parse_amz_date(params["X-Amz-Date"])
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError as exc:
        raise SignatureProblem("AuthorizationQueryParametersError", "X-Amz-Expires must be a number.") from exc
    if not 1 <= expires <= max_expires:
        raise SignatureProblem("AuthorizationQueryParametersError",
                               f"X-Amz-Expires must be between 1 and {max_expires} seconds.")
    now = now or datetime.now(UTC)
    if now > signed_at + timedelta(seconds=expires):
        raise SignatureProblem("AccessDenied", f"Request has expired: it was valid until "
                               f"{(signed_at + timedelta(seconds=expires)).strftime(_AMZ_DATE)}, "
                               f"it is now {now.strftime(_AMZ_DATE)}.")
    if signed_at > now + timedelta(minutes=15):
        raise SignatureProblem("AccessDenied", "Request is not valid yet: X-Amz-Date is in the future.")
    secret = secrets.get(credential.access_key)
    if secret is None:
        raise SignatureProblem("InvalidAccessKeyId",
                               "The AWS Access Key Id you provided does not exist in our records.")
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = params["X-Amz-SignedHeaders"].split(";")
    absent = [name for name in signed if name not in lowered]
    if absent:
        raise SignatureProblem("SignatureDoesNotMatch",
                               f"The request lacks the signed header(s) {', '.join(absent)}.")
    canonical_headers = "".join(f"{name}:{_SPACES.sub(' ', str(lowered[name]).strip())}\n" for name in signed)
    query = canonical_query(pairs)
    for payload in (UNSIGNED_PAYLOAD, EMPTY_SHA256):  # SDKs presign with the former, the docs' recipe the latter
        canonical = "\n".join([method.upper(), raw_path or "/", query, canonical_headers,
                               params["X-Amz-SignedHeaders"], payload])
        string_to_sign = "\n".join([ALGORITHM, params["X-Amz-Date"], credential.scope,
                                    hashlib.sha256(canonical.encode()).hexdigest()])
        if hmac.compare_digest(sign(secret, credential, string_to_sign), params["X-Amz-Signature"]):
            return credential
    raise SignatureProblem("SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your key and signing method.")


def verify_post_policy(*, policy_b64: str, fields: Mapping[str, str], secrets: Mapping[str, str],
                       service: str = "s3") -> Credential:
    """Check an S3 POST policy's signature (its conditions are checked by the caller)."""
    credential_value = fields.get("x-amz-credential", "")
    algorithm = fields.get("x-amz-algorithm", "")
    signature = fields.get("x-amz-signature", "")
    if algorithm != ALGORITHM or not credential_value or not signature:
        raise SignatureProblem("InvalidArgument", "The POST needs x-amz-algorithm, x-amz-credential, "
                                                  "x-amz-date and x-amz-signature form fields.")
    credential = parse_credential(credential_value)
    if credential.service != service:
        raise SignatureProblem("SignatureDoesNotMatch", f"The credential is scoped to {credential.service!r}.")
    secret = secrets.get(credential.access_key)
    if secret is None:
        raise SignatureProblem("InvalidAccessKeyId",
                               "The AWS Access Key Id you provided does not exist in our records.")
    if not hmac.compare_digest(sign(secret, credential, policy_b64), signature):
        raise SignatureProblem("SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature you provided.")
    return credential
