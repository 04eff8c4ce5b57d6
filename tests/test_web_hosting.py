"""Hosting the web app: a private bucket behind CloudFront in a nested stack of its own
(stacks/web-hosting.yaml, created when WebHosting=enabled), and the local stack's static server, which
answers as the distribution does."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.template import ROOT, Stack, load_template
from local_stack.web import IMMUTABLE, NO_CACHE, WebApp, local_config

TEMPLATE = load_template()
HOSTING_STACK = TEMPLATE["Resources"]["WebAppHosting"]
RESOURCES: dict[str, Any] = {**TEMPLATE["Resources"],
                             **load_template(ROOT / HOSTING_STACK["Properties"]["TemplateURL"])["Resources"]}
HOSTING = ("WebBucket", "WebBucketPolicy", "WebOriginAccessControl", "WebSpaRouting", "WebSecurityHeaders",
           "WebDistribution")
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def test_hosting_is_switched_by_one_parameter_and_off_by_default() -> None:
    assert TEMPLATE["Parameters"]["WebHosting"]["Default"] == "disabled"
    assert HOSTING_STACK["Type"] == "AWS::CloudFormation::Stack" and HOSTING_STACK["Condition"] == "HostWeb"
    for logical_id in HOSTING:
        assert logical_id not in TEMPLATE["Resources"] and RESOURCES[logical_id], logical_id  # all in the nested stack
    for output in ("WebUrl", "WebBucketName", "WebDistributionId"):
        assert TEMPLATE["Outputs"][output]["Condition"] == "HostWeb"
        assert TEMPLATE["Outputs"][output]["Value"]["Fn::GetAtt"][0] == "WebAppHosting"


def test_the_bucket_is_private_and_read_only_by_the_distribution() -> None:
    props = RESOURCES["WebBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
    allow, deny = RESOURCES["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    assert "${WebDistribution}" in str(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    origin = RESOURCES["WebDistribution"]["Properties"]["DistributionConfig"]["Origins"][0]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""


def test_https_only_spa_routing_and_caching() -> None:
    config = RESOURCES["WebDistribution"]["Properties"]["DistributionConfig"]
    default, assets = config["DefaultCacheBehavior"], config["CacheBehaviors"][0]
    assert {default["ViewerProtocolPolicy"], assets["ViewerProtocolPolicy"]} == {"redirect-to-https"}
    assert default["CachePolicyId"] == CACHING_DISABLED  # index.html, config.json
    assert (assets["PathPattern"], assets["CachePolicyId"]) == ("/assets/*", CACHING_OPTIMIZED)
    assert default["FunctionAssociations"][0]["EventType"] == "viewer-request"
    code = RESOURCES["WebSpaRouting"]["Properties"]["FunctionCode"]
    assert 'request.uri = "/index.html"' in code


@pytest.mark.parametrize(("hosting", "origin", "expected"), [
    ("enabled", "", "https://parley-prod-WebDistribution.DomainName"),
    ("enabled", "https://app.example.com", "https://app.example.com"),
    ("disabled", "", "http://localhost:5173"),
])
def test_the_cors_origin_and_sign_in_callbacks_follow_the_distribution(hosting: str, origin: str,
                                                                        expected: str) -> None:
    stack = Stack(parameters={"Stage": "prod", "AuthMode": "cognito", "WebHosting": hosting,
                              "CorsAllowOrigin": origin})
    resolve = stack.resolve
    # (the local template reader spells a distribution's DomainName as <its name>.DomainName); the origin is
    # chosen once, and every function that answers a browser gets it
    assert stack.get_att("AllowedOrigin", "Value") == expected
    for spec in stack.functions().values():
        assert spec.environment.get("CORS_ALLOW_ORIGIN", expected) == expected, spec.logical_id
    assert sum("CORS_ALLOW_ORIGIN" in spec.environment for spec in stack.functions().values()) >= 10
    api = resolve(RESOURCES["RestApi"]["Properties"])
    assert api["Cors"]["AllowOrigin"] == f"'{expected}'"
    assert {r["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"]
            for r in api["GatewayResponses"].values()} == {f"'{expected}'"}
    client = resolve(RESOURCES["UserPoolClient"]["Properties"])
    assert client["CallbackURLs"] == [f"{expected}/auth/callback"]
    assert client["LogoutURLs"] == [f"{expected}/"]
    assert client["AllowedOAuthFlows"] == ["code"] and "GenerateSecret" in client and not client["GenerateSecret"]
    files = resolve(RESOURCES["PromptFilesBucket"]["Properties"])
    assert files["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] == [expected]


# -- the local stack's static server ---------------------------------------------------------------
@pytest.fixture
def served(tmp_path: Path) -> Iterator[WebApp]:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Parley</title>", encoding="utf-8")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)", encoding="utf-8")
    app = WebApp("127.0.0.1", 0, dist=tmp_path).start(local_config("http://127.0.0.1:1", "ws://127.0.0.1:2"))
    yield app
    app.stop()


def get(app: WebApp, path: str, host: str | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{app.port}"})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def test_the_local_server_answers_as_the_distribution_does(served: WebApp) -> None:
    route = get(served, "/practice/history/01ABC")
    assert route.status == 200 and route.headers["Cache-Control"] == NO_CACHE  # a route: index.html
    assert get(served, "/assets/index-abc123.js").headers["Cache-Control"] == IMMUTABLE
    assert get(served, "/assets/missing-000.js").status == 404  # never HTML for a missing asset
    outside = get(served, "/../../etc/passwd")
    assert b"root:" not in outside.body and outside.body.startswith(b"<!doctype html>")  # type: ignore[attr-defined]
    moved = get(served, "/proofread", host=f"localhost:{served.port}")
    assert moved.status == 308 and moved.headers["Location"] == f"{served.url}/proofread"


def test_the_local_config_points_at_the_local_stack(served: WebApp) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.request("GET", "/config.json")
    response = conn.getresponse()
    config = json.loads(response.read())
    assert response.headers["Cache-Control"] == NO_CACHE
    assert config == {"apiUrl": "http://127.0.0.1:1", "webSocketUrl": "ws://127.0.0.1:2",
                      "auth": {"mode": "device"}, "stage": "local"}
