"""Template checks moto cannot make: CloudFormation's limits, API Gateway's logging role, retention.

Each check takes a template as a dict (SAM's transformed template, or ``template.yaml`` itself for the
parts that read the same) and returns the problems it found, one sentence each; an empty list passes.
The sources:

- limits: "Understand CloudFormation quotas",
  docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html - 500 resources,
  200 outputs, 200 parameters, a 1 MB template from S3 (``sam deploy`` with ``resolve_s3`` uploads
  it), 1,024-byte description; and "Access log template size: 3 KB" in "Quotas for configuring and
  running a WebSocket in API Gateway".
- logging role: "Set up CloudWatch logging for REST APIs in API Gateway" (a stage's logs need the
  account's CloudWatch role ARN setting, which ``AWS::ApiGateway::Account`` sets) and "Configure
  logging for WebSocket APIs in API Gateway" (the same setting).
- retention: the ``DeletionPolicy`` attribute's ``RetainExceptOnCreate`` ("behaves like Retain for
  stack operations, except for the stack operation that initially created the resource"), and
  ``UpdateReplacePolicy`` (Delete, Retain or Snapshot; it has no RetainExceptOnCreate).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from local_stack.template import NO_VALUE, Stack

MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_PARAMETERS = 200
MAX_TEMPLATE_BYTES_S3 = 1_000_000  # "1 MB"; CloudFormation refuses a template from S3 over 1,000,000 bytes
MAX_DESCRIPTION_BYTES = 1024
MAX_ACCESS_LOG_FORMAT_BYTES = 3 * 1024

LOGGING_ROLE_PARAMETER = "ApiGatewayCloudWatchRole"
PUSH_TO_CLOUDWATCH_POLICY = "AmazonAPIGatewayPushToCloudWatchLogs"
STAGE_TYPES = ("AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Stage", "AWS::Serverless::Api")
_EXECUTION_LOG_LEVELS = ("INFO", "ERROR")


# -- resolving a template the way CloudFormation would, with names good enough to check -----------
class VerifyStack(Stack):
    """``local_stack``'s resolver, with the physical ids and ARNs of the resource types SAM's
    translator emits (``AWS::Lambda::Function`` and friends), shaped as AWS shapes them."""

    _NAME_KEYS: ClassVar[dict[str, str]] = {"AWS::Lambda::Function": "FunctionName", "AWS::IAM::Role": "RoleName",
                                            "AWS::ApiGatewayV2::Api": "Name", "AWS::ApiGateway::RestApi": "Name"}

    def physical_name(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        key = self._NAME_KEYS.get(kind)
        props = self.resources[logical_id].get("Properties") or {}
        if key and key in props:
            return str(self.resolve(props[key]))
        return super().physical_name(logical_id)

    def ref(self, name: str) -> Any:
        if name in self.resources and name not in self.parameters:
            kind = self.resources[name]["Type"]
            special = {
                "AWS::IAM::ManagedPolicy": lambda: f"arn:aws:iam::{self.account}:policy/{name}",
                "AWS::Cognito::UserPool": lambda: f"{self.region}_Verify0001",
                "AWS::Cognito::UserPoolClient": lambda: "1verify2client3id4example5",
                "AWS::ApiGatewayV2::Api": lambda: "wsapi01234",
                "AWS::ApiGateway::RestApi": lambda: "restapi012",
                "AWS::ApiGatewayV2::Authorizer": lambda: "auth012",
                "AWS::Lambda::LayerVersion": lambda: self.arn(name) + ":1",
                "AWS::StepFunctions::StateMachine": lambda: self.arn(name),
            }.get(kind)
            if special:
                return special()
        return super().ref(name)

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        r, a = self.region, self.account
        arn = {
            "AWS::Lambda::Function": f"arn:aws:lambda:{r}:{a}:function:{name}",
            "AWS::Lambda::LayerVersion": f"arn:aws:lambda:{r}:{a}:layer:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{a}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{r}:{a}:log-group:{name}:*",
        }.get(kind)
        return arn or super().arn(logical_id)


def conditions_true(stack: Stack) -> set[str]:
    return {name for name in stack.template.get("Conditions", {}) if stack.condition(name)}


# -- references between resources (for "does this stage wait for that account setting?") ---------
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def references(value: Any, stack: Stack) -> set[str]:
    """Logical ids ``value`` refers to (Ref, GetAtt, Sub), following only the taken branch of an If."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item, stack)
    elif isinstance(value, dict):
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Fn::If":
                return references(arg[1] if stack.condition(arg[0]) else arg[2], stack)
            if key == "Ref":
                return {arg} & set(stack.resources)
            if key == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
                return {target} & set(stack.resources)
            if key == "Fn::Sub":
                text, extra = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
                names = set(_SUB_NAME.findall(text)) - set(extra)
                return (names & set(stack.resources)) | references(extra, stack)
        for item in value.values():
            found |= references(item, stack)
    return found


def dependency_graph(stack: Stack) -> dict[str, set[str]]:
    """Each enabled resource -> what CloudFormation creates before it (DependsOn and references,
    Metadata included: a Ref there orders creation too)."""
    graph: dict[str, set[str]] = {}
    for logical_id, resource in stack.resources.items():
        if not stack.enabled(logical_id):
            continue
        depends = resource.get("DependsOn") or []
        edges = set([depends] if isinstance(depends, str) else depends)
        edges |= references(resource.get("Properties") or {}, stack)
        edges |= references(resource.get("Metadata") or {}, stack)
        graph[logical_id] = edges
    return graph


def waits_for(graph: Mapping[str, set[str]], start: str, target: str) -> bool:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


# -- API Gateway's account-wide logging role ---------------------------------------------------------
@dataclass(frozen=True)
class StageLogging:
    stage: str
    what: str  # "access logs", "execution logs"
    formats: tuple[str, ...] = ()


def logging_stages(stack: Stack) -> list[StageLogging]:
    """The stages (REST, WebSocket, or a SAM Api before the transform) that write CloudWatch logs."""
    found = []
    for logical_id, resource in stack.resources.items():
        if resource["Type"] not in STAGE_TYPES or not stack.enabled(logical_id):
            continue
        props = stack.resolve(resource.get("Properties") or {})
        access = props.get("AccessLogSetting") or props.get("AccessLogSettings")
        if access and access is not NO_VALUE and access.get("DestinationArn"):
            found.append(StageLogging(logical_id, "access logs", (str(access.get("Format", "")),)))
        settings = [*props.get("MethodSettings", []), props.get("DefaultRouteSettings") or {},
                    *(props.get("RouteSettings") or {}).values()]
        if any(str(s.get("LoggingLevel", "OFF")).upper() in _EXECUTION_LOG_LEVELS or s.get("DataTraceEnabled") in
               (True, "true") for s in settings if isinstance(s, dict)):
            found.append(StageLogging(logical_id, "execution logs"))
    return found


def _role_problems(stack: Stack, account: str) -> list[str]:
    props = stack.resources[account].get("Properties") or {}
    roles = [r for r in references(props.get("CloudWatchRoleArn"), stack)
             if stack.resources[r]["Type"] == "AWS::IAM::Role"]
    if not roles:
        return [f"{account} sets no role this template creates (CloudWatchRoleArn)"]
    role = stack.resolve(stack.resources[roles[0]].get("Properties") or {})
    problems = []
    if not any(str(arn).endswith(f"/{PUSH_TO_CLOUDWATCH_POLICY}") for arn in role.get("ManagedPolicyArns", [])):
        problems.append(f"{roles[0]} lacks the {PUSH_TO_CLOUDWATCH_POLICY} managed policy")
    trust = json.dumps(role.get("AssumeRolePolicyDocument", {}))
    if "apigateway.amazonaws.com" not in trust:
        problems.append(f"{roles[0]} cannot be assumed by apigateway.amazonaws.com")
    return problems


def check_api_logging(template: Mapping[str, Any], parameters: Mapping[str, str]) -> list[str]:
    """Every stage that logs waits for the account's CloudWatch role setting, for each choice of the
    logging-role parameter: ``create`` sets it (an ``AWS::ApiGateway::Account`` each logging stage
    depends on), ``existing`` leaves it alone, ``disabled`` logs nothing."""
    spec = (template.get("Parameters") or {}).get(LOGGING_ROLE_PARAMETER)
    choices = [str(v) for v in spec.get("AllowedValues", [spec.get("Default")])] if spec else [None]
    problems: list[str] = []
    for choice in choices:
        values = dict(parameters) if choice is None else {**parameters, LOGGING_ROLE_PARAMETER: choice}
        stack = VerifyStack(dict(template), parameters=values)
        logging = logging_stages(stack)
        if not logging:
            continue
        where = ", ".join(f"{s.stage} ({s.what})" for s in logging)
        accounts = [lid for lid, r in stack.resources.items()
                    if r["Type"] == "AWS::ApiGateway::Account" and stack.enabled(lid)]
        if choice is None:
            problems.append(f"API Gateway logging is enabled ({where}) but the template has no "
                            f"{LOGGING_ROLE_PARAMETER} parameter: a first deploy fails with \"CloudWatch Logs role "
                            "ARN must be set in account settings to enable logging\"")
            continue
        label = f"{LOGGING_ROLE_PARAMETER}={choice}"
        if choice == "disabled":
            problems.append(f"{label} still logs: {where}")
        elif choice == "existing":
            if accounts:
                problems.append(f"{label} must leave the account setting alone, but {accounts[0]} sets it")
        elif not accounts:
            problems.append(f"{label} logs ({where}) but no AWS::ApiGateway::Account sets the role")
        else:
            graph = dependency_graph(stack)
            for stage in {s.stage for s in logging}:
                if not any(waits_for(graph, stage, account) for account in accounts):
                    problems.append(f"{label}: {stage} does not wait for {accounts[0]} (the account's log role); "
                                    "add a DependsOn (see ApiGatewayLoggingReady)")
            problems += [f"{label}: {p}" for a in accounts for p in _role_problems(stack, a)]
    return problems


def check_no_stray_stage(transformed: Mapping[str, Any]) -> list[str]:
    """Without ``OpenApiVersion`` SAM gives the REST API's deployment a StageName "Stage": an extra,
    unlogged stage next to the real one."""
    return [f"{lid} creates a stage named {r['Properties']['StageName']!r} besides the API's own (set "
            "Globals.Api.OpenApiVersion)" for lid, r in (transformed.get("Resources") or {}).items()
            if r["Type"] == "AWS::ApiGateway::Deployment" and (r.get("Properties") or {}).get("StageName")]


# -- retention -------------------------------------------------------------------------------------
def check_retention(template: Mapping[str, Any]) -> list[str]:
    """A retained resource uses RetainExceptOnCreate (a retry after a failed create must not find its
    fixed name taken) and keeps the old copy on replacement too."""
    problems = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        policy = resource.get("DeletionPolicy")
        if policy == "Retain":
            problems.append(f"{logical_id}: DeletionPolicy Retain also keeps it when its create rolls back, so the "
                            "retry fails with \"already exists\": use RetainExceptOnCreate")
        if policy == "RetainExceptOnCreate" and resource.get("UpdateReplacePolicy") not in ("Retain", "Snapshot"):
            problems.append(f"{logical_id}: RetainExceptOnCreate without UpdateReplacePolicy Retain - a replacement "
                            "would delete what a deletion keeps")
    return problems


# -- CloudFormation's limits -------------------------------------------------------------------------
@dataclass(frozen=True)
class Margin:
    what: str
    used: int
    limit: int

    @property
    def left(self) -> int:
        return self.limit - self.used

    def line(self) -> str:
        share = 100 * self.used / self.limit
        return f"{self.what}: {self.used:,} of {self.limit:,} ({self.left:,} left, {share:.0f} % used)"


def limit_margins(transformed: Mapping[str, Any], packaged_bytes: int) -> list[Margin]:
    text = json.dumps(transformed, separators=(",", ":"))
    formats = [f for r in (transformed.get("Resources") or {}).values() if r["Type"] in STAGE_TYPES
               for f in _access_log_formats(r)]
    return [
        Margin("resources", len(transformed.get("Resources") or {}), MAX_RESOURCES),
        Margin("outputs", len(transformed.get("Outputs") or {}), MAX_OUTPUTS),
        Margin("parameters", len(transformed.get("Parameters") or {}), MAX_PARAMETERS),
        Margin("packaged template bytes (uploaded to S3)", packaged_bytes, MAX_TEMPLATE_BYTES_S3),
        Margin("transformed template bytes", len(text.encode()), MAX_TEMPLATE_BYTES_S3),
        Margin("description bytes", len(str(transformed.get("Description", "")).encode()), MAX_DESCRIPTION_BYTES),
        Margin("largest access log format bytes", max((len(f.encode()) for f in formats), default=0),
               MAX_ACCESS_LOG_FORMAT_BYTES),
    ]


def _access_log_formats(resource: Mapping[str, Any]) -> Iterable[str]:
    props = resource.get("Properties") or {}
    setting = props.get("AccessLogSetting") or props.get("AccessLogSettings") or {}
    for candidate in (setting.get("Fn::If", [None, {}, {}])[1:] if "Fn::If" in setting else [setting]):
        if isinstance(candidate, dict) and isinstance(candidate.get("Format"), str):
            yield candidate["Format"]


def check_limits(margins: Iterable[Margin]) -> list[str]:
    return [f"over CloudFormation's limit - {m.line()}" for m in margins if m.left < 0]


def check_access_log_formats(template: Mapping[str, Any]) -> list[str]:
    """Each access log line must be one JSON object once API Gateway fills in its variables."""
    problems = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource["Type"] not in STAGE_TYPES:
            continue
        for fmt in _access_log_formats(resource):
            sample = re.sub(r"\$context\.[A-Za-z0-9.]+String", '"an \\"error\\" message"', fmt)
            sample = re.sub(r"\$context\.[A-Za-z0-9.]+", "x", sample)
            try:
                json.loads(sample)
            except ValueError as exc:
                problems.append(f"{logical_id}: the access log format does not give JSON ({exc}): {fmt}")
    return problems
