"""The OpenAPI document is generated from the handlers and agrees with template.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path

from local_stack.lambdas import FunctionRunner
from local_stack.openapi import build_openapi
from local_stack.template import Stack

COMMITTED = Path(__file__).resolve().parent.parent / "openapi.json"


def test_every_template_route_is_documented_and_nothing_else(stack: Stack, runner: FunctionRunner) -> None:
    doc = build_openapi(stack, runner)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    routed = {(route.method, route.path) for route in stack.api_routes()}
    assert documented == routed


def test_every_operation_has_a_summary_and_the_error_schema(stack: Stack, runner: FunctionRunner) -> None:
    doc = build_openapi(stack, runner)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert operation["responses"]["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}


def test_every_reference_resolves(stack: Stack, runner: FunctionRunner) -> None:
    doc = build_openapi(stack, runner)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs and refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])


def test_the_committed_openapi_json_is_current(stack: Stack, runner: FunctionRunner) -> None:
    generated = build_openapi(stack, runner)
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == generated, "run `make openapi` and commit openapi.json"


def test_the_parameter_table_is_current() -> None:
    from local_stack.docs import PARAMETERS_PAGE, refreshed_parameters_page

    assert PARAMETERS_PAGE.read_text(encoding="utf-8") == refreshed_parameters_page(), \
        "run `make docs` and commit docs/parameters.md"
