"""Read ``template.yaml`` the way CloudFormation would, enough to run the stack locally.

The local stack and the tests derive everything from the template: the routes (each function's
``Api`` events), each function's environment (Globals merged with its own variables, intrinsics
resolved), and the AWS resources to create in the emulator (tables, buckets, buses, queues, state
machines) from their own properties. There is no second, hand-kept list to drift from it.

A value named once and read elsewhere (``AWS::SSM::Parameter``'s ``Value``) resolves to what it
names, and a nested stack's output (``!GetAtt Child.Outputs.X`` of an ``AWS::CloudFormation::Stack``
whose ``TemplateURL`` is a local file) to the child template's output, given the parameters the parent
passes it - as CloudFormation would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
NO_VALUE = object()


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns ``!Ref X`` into ``{"Ref": "X"}`` and so on."""


def _multi(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _multi)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the template: /sessions/{sessionId}
    function: str  # logical id
    api: str  # logical id of the RestApi
    authorizer: str | None  # logical id of the authorizer function, None for no auth
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile(""))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method and self.method != "ANY":
            return None
        found = self.pattern.match(path)
        return found.groupdict() if found else None


def _route_pattern(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "/?$")


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    events: dict[str, Any]


class Stack:
    """The template with parameter values chosen, its intrinsics resolvable."""

    def __init__(self, template: dict[str, Any] | None = None, *, parameters: Mapping[str, str] | None = None,
                 region: str = REGION, account: str = ACCOUNT) -> None:
        self.template = template if template is not None else load_template()
        self.region = region
        self.account = account
        self.resources: dict[str, Any] = self.template.get("Resources", {})
        self.parameters: dict[str, str] = {
            name: str(spec.get("Default", "")) for name, spec in self.template.get("Parameters", {}).items()
        }
        self.parameters.update(parameters or {})
        self._conditions: dict[str, bool] = {}

    # -- intrinsics ---------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template.get("Conditions", {})[name]))
        return self._conditions[name]

    def enabled(self, logical_id: str) -> bool:
        cond = self.resources[logical_id].get("Condition")
        return True if cond is None else self.condition(cond)

    def physical_name(self, logical_id: str) -> str:
        props = self.resources[logical_id].get("Properties", {}) or {}
        kind = self.resources[logical_id]["Type"]
        key = {
            "AWS::DynamoDB::Table": "TableName", "AWS::S3::Bucket": "BucketName", "AWS::Events::EventBus": "Name",
            "AWS::SQS::Queue": "QueueName", "AWS::Serverless::Function": "FunctionName",
            "AWS::Serverless::StateMachine": "Name", "AWS::StepFunctions::StateMachine": "StateMachineName",
            "AWS::SNS::Topic": "TopicName", "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::Serverless::LayerVersion": "LayerName", "AWS::Serverless::Api": "Name",
            "AWS::SecretsManager::Secret": "Name", "AWS::SSM::Parameter": "Name",
        }.get(kind)
        if key and key in props:
            return str(self.resolve(props[key]))
        stage = self.parameters.get("Stage", "local")
        return f"parley-{stage}-{logical_id}"

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::StackName": "parley-local",
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": NO_VALUE}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            kind = self.resources[name]["Type"]
            if kind in ("AWS::SQS::Queue",):
                return f"http://sqs.{self.region}.localhost/{self.account}/{self.physical_name(name)}"
            if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
                return self.arn(name)
            return self.physical_name(name)
        raise KeyError(f"Ref to unknown name {name!r}")

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        r, a = self.region, self.account
        return {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{r}:{a}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::Events::EventBus": f"arn:aws:events:{r}:{a}:event-bus/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{r}:{a}:{name}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{r}:{a}:function:{name}",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{r}:{a}:stateMachine:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{r}:{a}:stateMachine:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{r}:{a}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{r}:{a}:log-group:{name}",
            "AWS::Cognito::UserPool": f"arn:aws:cognito-idp:{r}:{a}:userpool/{name}",
        }.get(kind, f"arn:aws:local:{r}:{a}:{logical_id}/{name}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if kind == "AWS::SSM::Parameter" and attribute == "Value":
            return str(self.resolve(self.resources[logical_id]["Properties"]["Value"]))
        if kind == "AWS::CloudFormation::Stack" and attribute.startswith("Outputs."):
            return str(self.nested(logical_id).output(attribute.removeprefix("Outputs.")))
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "QueueUrl":
            return str(self.ref(logical_id))
        if attribute in ("QueueName", "Name"):
            return self.physical_name(logical_id)
        return f"{self.physical_name(logical_id)}.{attribute}"

    def nested(self, logical_id: str) -> Stack:
        """A nested stack (``AWS::CloudFormation::Stack`` with a local ``TemplateURL``), its parameters
        resolved here."""
        props = self.resources[logical_id]["Properties"]
        values = {name: str(self.resolve(value)) for name, value in (props.get("Parameters") or {}).items()}
        return type(self)(load_template(ROOT / str(props["TemplateURL"])), parameters=values, region=self.region,
                          account=self.account)

    def output(self, name: str) -> Any:
        return self.resolve(self.template["Outputs"][name]["Value"])

    def _sub(self, text: str, extra: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in extra:
                return str(self.resolve(extra[token]))
            if "." in token and not token.startswith("AWS::"):
                logical, attribute = token.split(".", 1)
                return self.get_att(logical, attribute)
            return str(self.ref(token))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(parts[0], parts[1])
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self._sub(arg[0], arg[1])
                return self._sub(arg, {})
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(v)) for v in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::ToJsonString":
                import json

                return json.dumps(self.resolve(arg))
        return {k: r for k, v in value.items() if (r := self.resolve(v)) is not NO_VALUE}

    # -- functions and routes -----------------------------------------------------------------
    def functions(self) -> dict[str, FunctionSpec]:
        globals_fn = (self.template.get("Globals") or {}).get("Function", {})
        base_env = (globals_fn.get("Environment") or {}).get("Variables", {})
        specs = {}
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function" or not self.enabled(logical_id):
                continue
            props = resource.get("Properties", {})
            env_vars = {**base_env, **(props.get("Environment") or {}).get("Variables", {})}
            environment = {k: "" if v is None else str(v) for k, v in self.resolve(env_vars).items()}
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id, name=self.physical_name(logical_id),
                code_uri=ROOT / str(props["CodeUri"]),
                handler=str(props.get("Handler", globals_fn.get("Handler", "app.handler"))),
                environment=environment, timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
                events=props.get("Events") or {},
            )
        return specs

    def _authorizer_function(self, api_id: str, name: str | None) -> str | None:
        auth = (self.resources[api_id].get("Properties") or {}).get("Auth") or {}
        chosen = name or auth.get("DefaultAuthorizer")
        if not chosen or chosen == "NONE":
            return None
        spec = (auth.get("Authorizers") or {})[chosen]
        arn = spec["FunctionArn"]
        logical = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else None
        if logical is None:
            raise ValueError(f"Authorizer {chosen} has no FunctionArn the local stack can follow")
        return str(logical)

    def api_routes(self) -> list[Route]:
        routes = []
        for logical_id, spec in self.functions().items():
            for event in spec.events.values():
                if event.get("Type") != "Api":
                    continue
                props = event["Properties"]
                api = props.get("RestApiId", {}).get("Ref", "ServerlessRestApi")
                auth_name = (props.get("Auth") or {}).get("Authorizer")
                routes.append(Route(
                    method=str(props["Method"]).upper(), path=str(props["Path"]), function=logical_id, api=api,
                    authorizer=self._authorizer_function(api, auth_name), pattern=_route_pattern(str(props["Path"])),
                ))
        # Literal segments win over parameters, as in API Gateway: /transcriptions/upload-url before /{id}.
        routes.sort(key=lambda r: (r.path.count("{"), -len(r.path)))
        return routes

    def layer_paths(self) -> list[Path]:
        """Folders of the template's layers: what Lambda puts on the path under /opt/python."""
        return [ROOT / str(r["Properties"]["ContentUri"]) for r in self.resources.values()
                if r["Type"] == "AWS::Serverless::LayerVersion"]

    def resources_of(self, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
        return [(lid, self.resolve(r.get("Properties") or {})) for lid, r in self.resources.items()
                if r["Type"] in kinds and self.enabled(lid)]
