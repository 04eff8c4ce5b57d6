"""S3 in the local stack refuses what S3 refuses (local_stack.s3_signatures): a presigned PUT with another
Content-Type or size than signed, an expired or forged URL, and a POST upload outside its policy.
moto's own server on a free port, driven over HTTP as a browser would."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config

from local_stack.s3_signatures import strict_s3

KEY, SECRET = "s3-test-key", "s3-test-secret"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                          aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket="uploads")
    with strict_s3({KEY: SECRET}):
        yield client
    server.stop()


def send(request: urllib.request.Request) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def put(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    return send(urllib.request.Request(url, data=body, method="PUT", headers=headers))


def test_a_presigned_put_takes_exactly_what_was_signed(s3: Any) -> None:
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "uploads", "Key": "a.wav",
                                                          "ContentType": "audio/wav", "ContentLength": 4},
                                    ExpiresIn=300, HttpMethod="PUT")
    status, body = put(url, b"RIFF", {"Content-Type": "text/plain"})
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    status, body = put(url, b"RIFFRIFF", {"Content-Type": "audio/wav"})  # 8 bytes, signed for 4
    assert status == 403 and b"SignatureDoesNotMatch" in body
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket="uploads", Key="a.wav")  # nothing was stored
    assert put(url, b"RIFF", {"Content-Type": "audio/wav"})[0] == 200
    assert s3.get_object(Bucket="uploads", Key="a.wav")["Body"].read() == b"RIFF"


def test_an_expired_or_forged_url_is_refused(s3: Any) -> None:
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    with mock.patch("botocore.auth.get_current_datetime", return_value=long_ago):
        expired = s3.generate_presigned_url("put_object", Params={"Bucket": "uploads", "Key": "b.wav"},
                                            ExpiresIn=60, HttpMethod="PUT")
    status, body = put(expired, b"x", {})
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"expired" in body
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "uploads", "Key": "b.wav"}, HttpMethod="PUT")
    forged = url.replace("b.wav", "c.wav")
    assert put(forged, b"x", {})[0] == 403


def _post(s3: Any, fields: dict[str, str], data: bytes, content_type: str) -> tuple[int, bytes]:
    boundary = "s3-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    url = s3.meta.endpoint_url + "/uploads"
    return send(urllib.request.Request(url, data=body, method="POST",
                                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}))


def test_a_post_upload_is_held_to_its_policy(s3: Any) -> None:
    post = s3.generate_presigned_post("uploads", "d.webm", Fields={"Content-Type": "audio/webm"},
                                      Conditions=[{"Content-Type": "audio/webm"}, ["content-length-range", 1, 10]],
                                      ExpiresIn=300)
    status, body = _post(s3, post["fields"], b"x" * 11, "audio/webm")
    assert status == 400 and b"EntityTooLarge" in body
    status, body = _post(s3, {**post["fields"], "Content-Type": "text/plain"}, b"x", "text/plain")
    assert status == 403 and b"Invalid according to Policy" in body
    status, body = _post(s3, {**post["fields"], "acl": "public-read"}, b"x", "audio/webm")
    assert status == 403 and b"Extra input fields: acl" in body
    status, body = _post(s3, {**post["fields"], "x-amz-signature": "0" * 64}, b"x", "audio/webm")
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert _post(s3, post["fields"], b"\x1a\x45\xdf\xa3", "audio/webm")[0] in (200, 201, 204)
    assert s3.get_object(Bucket="uploads", Key="d.webm")["Body"].read() == b"\x1a\x45\xdf\xa3"


def test_a_browsers_cors_preflight_is_not_taken_for_an_unsigned_upload(s3: Any) -> None:
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "uploads", "Key": "e.md",
                                                          "ContentType": "text/markdown"}, HttpMethod="PUT")
    _status, body = send(urllib.request.Request(url, method="OPTIONS", headers={
        "Origin": "http://127.0.0.1:5173", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"}))
    assert b"SignatureDoesNotMatch" not in body  # the preflight is moto's (CORS) to answer, not a signature check
