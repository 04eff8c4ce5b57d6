"""template.yaml (and its nested stacks) and samconfig.toml hold the promises the seeds broke: read
them and check. Everything here is derived from the template and the code - adding a function adds
no line to this file."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str
from pydantic import BaseModel

from local_stack.template import ROOT, load_template
from verify.iam import RESOURCE_LESS_ACTIONS

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
STATE_MACHINES = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::StateMachine"}
NESTED = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudFormation::Stack"}
MONITORING = load_template(ROOT / RESOURCES["Monitoring"]["Properties"]["TemplateURL"])
# Read by Powertools itself, not by a function's environment model: the one thing Globals sets for all.
POWERTOOLS = re.compile(r"^POWERTOOLS_[A-Z_]+$")

# The one list of actions that may be granted on "*", each with its reason (make verify holds it to
# the Service Authorization Reference and lints every statement of the transformed template).
RESOURCE_STAR_ALLOWED = set(RESOURCE_LESS_ACTIONS)


def _branches(policy: Any) -> list[Any]:
    """A policy, or both branches of a conditional one (``!If [Cond, {Statement: ...}, NoValue]``)."""
    if isinstance(policy, dict) and "Fn::If" in policy:
        return [b for branch in policy["Fn::If"][1:] for b in _branches(branch)]
    return [policy]


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in RESOURCES.items():
        props = resource.get("Properties") or {}
        policies = props.get("Policies") or []
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in (b for p in (policies if isinstance(policies, list) else [policies]) for b in _branches(p)):
                if isinstance(policy, dict) and "Statement" in policy:
                    found += [(logical_id, s) for s in policy["Statement"]]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_globals_are_python311_arm64_traced_and_set_only_what_every_function_reads() -> None:
    fn = TEMPLATE["Globals"]["Function"]
    assert fn["Runtime"] == "python3.11"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Tracing"] == "Active"
    variables = set(fn["Environment"]["Variables"])
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= variables
    assert all(POWERTOOLS.match(name) for name in variables), variables


def test_the_template_stays_short_and_nothing_in_it_is_generated() -> None:
    # One place per change: what repeats per function is in Globals or one stack-wide resource, and what
    # watches the stack is in stacks/monitoring.yaml (docs/development.md, "Where a new block goes").
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 1800, "template.yaml is over 1,800 lines: see docs/development.md"
    assert not re.search(r"-{3,} generated|make docs", text, re.I), "nothing in template.yaml is written by a script"
    alarms = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    assert not alarms, f"{alarms}: alarms go in stacks/monitoring.yaml"


def test_every_loader_reads_the_same_template() -> None:
    # Flow mappings ({...}) are read alike by PyYAML (the local stack, the tests), cfn-lint's decoder and,
    # in make verify, SAM's: a plain scalar one of them parses differently would show here.
    for path in [ROOT / "template.yaml", *(ROOT / r["Properties"]["TemplateURL"] for r in NESTED.values())]:
        theirs, problems = decode_str(path.read_text(encoding="utf-8"))
        assert not problems, (path, problems)
        assert json.loads(json.dumps(theirs, default=str)) == json.loads(json.dumps(load_template(path))), path


@pytest.mark.parametrize("name", ["Stage", "AuthMode", "CorsAllowOrigin", "DataRetentionDays", "LogRetentionDays"])
def test_required_parameters_exist_with_documented_defaults(name: str) -> None:
    params = TEMPLATE["Parameters"]
    assert name in params and params[name].get("Description")
    assert params["DataRetentionDays"]["Default"] == 90
    assert params["LogRetentionDays"]["Default"] == 7
    assert params["AuthMode"]["AllowedValues"] == ["cognito", "device"]


def test_every_parameter_is_documented() -> None:
    page = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    missing = [name for name in TEMPLATE["Parameters"] if f"`{name}`" not in page]
    assert not missing, f"parameters missing from docs/parameters.md: {missing}"


def test_the_table_has_the_seed_keys_ttl_and_recovery() -> None:
    table = RESOURCES["Table"]["Properties"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]
    gsi = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}["GSI1"]
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["GSI1PK", "GSI1SK"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_browsers_may_upload_to_the_audio_bucket_from_the_one_allowed_origin_only() -> None:
    (rule,) = RESOURCES["AudioBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    (prompt_files,) = RESOURCES["PromptFilesBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == prompt_files["AllowedOrigins"]  # the APIs' one origin, however it is chosen
    assert set(rule["AllowedMethods"]) == {"PUT", "POST"}  # presigned PUT or POST form; never GET or DELETE
    assert rule["AllowedHeaders"] == ["Content-Type"]


def test_the_audio_bucket_is_private_encrypted_and_self_cleaning() -> None:
    bucket = RESOURCES["AudioBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and r.get("ExpirationInDays") == 1 and not r.get("Prefix") for r in rules)


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_is_named_by_stage_and_logs_to_the_shared_group(logical_id: str) -> None:
    props = FUNCTIONS[logical_id]["Properties"]
    assert "${Stage}" in _text(props["FunctionName"]), logical_id
    assert "LoggingConfig" not in props, f"{logical_id}: its logs go to Globals' group, with its retention"
    assert (ROOT / props["CodeUri"] / "app.py").is_file(), logical_id


def test_every_log_group_is_kept_log_retention_days() -> None:
    group = TEMPLATE["Globals"]["Function"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    # Lambda names each stream <date>/<function>[<version>]<id> in a shared group (the saved query parses it).
    assert RESOURCES[group]["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/parley-${Stage}"}
    groups = [r for r in RESOURCES.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) >= 3 and all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)


# -- each function's environment: exactly what its environment model reads ---------------------------
@cache
def env_model(code_uri: str) -> type[BaseModel]:
    """The pydantic class a handler loads its environment with (``ENV = SomeEnv.load(os.environ)``),
    found in its own source: the config module it imports the class from."""
    tree = ast.parse((ROOT / code_uri / "app.py").read_text(encoding="utf-8"))
    imported = {alias.asname or alias.name: node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
    loaded = {node.func.value.id for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
              and isinstance(node.func.value, ast.Name)
              and str(imported.get(node.func.value.id, "")).endswith("config")}
    assert len(loaded) == 1, f"{code_uri}app.py should load one environment model, found {sorted(loaded)}"
    (name,) = loaded
    model: type[BaseModel] = getattr(importlib.import_module(str(imported[name])), name)
    return model


def _reads(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    """(every variable the model reads, the ones it requires)."""
    names = {field.alias or name: field.is_required() for name, field in model.model_fields.items()}
    return set(names), {alias for alias, required in names.items() if required}


def _variables(logical_id: str) -> dict[str, Any]:
    return dict((FUNCTIONS[logical_id]["Properties"].get("Environment") or {}).get("Variables") or {})


def _wired(value: Any) -> bool:
    """A value the deployment decides (a parameter, a resource), not a literal tuned for one function."""
    return "'Ref'" in repr(value) or "'Fn::GetAtt'" in repr(value) or "'Fn::Sub'" in repr(value)


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_function_gets_exactly_the_variables_its_environment_model_reads(logical_id: str) -> None:
    reads, required = _reads(env_model(FUNCTIONS[logical_id]["Properties"]["CodeUri"]))
    given = set(_variables(logical_id))
    assert not given - reads, f"{logical_id} is given variables its environment model does not read"
    assert not required - given, f"{logical_id} lacks variables its environment model requires"
    # Every variable the deployment decides reaches every function that reads it, with one meaning.
    wired: dict[str, Any] = {}
    for other in FUNCTIONS:
        wired.update({k: v for k, v in _variables(other).items() if _wired(v)})
    missing = {name for name in reads & set(wired) if name not in given}
    assert not missing, f"{logical_id} reads {sorted(missing)}, which the template sets for other functions only"
    differs = {name for name in given & set(wired) if _variables(logical_id)[name] != wired[name]}
    assert not differs, f"{logical_id} sets {sorted(differs)} differently from the other functions"


def test_the_variables_check_catches_a_stray_and_a_missing_variable() -> None:
    reads, required = _reads(env_model("functions/settings/"))
    assert "TABLE_NAME" in required and "AI_PROVIDER" not in reads  # a stray AI variable would be flagged
    assert {"CORS_ALLOW_ORIGIN", "DATA_RETENTION_DAYS"} <= reads
    assert _wired({"Ref": "Table"}) and _wired({"Fn::GetAtt": ["AllowedOrigin", "Value"]}) and not _wired("65536")


def test_the_documented_new_function_follows_the_same_rules(tmp_path: Path) -> None:
    # docs/development.md's example ("Adding a function") is a block these tests would accept as it stands.
    page = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    section = page.split("## Adding a function", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S)
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert python and block
    (tmp_path / "block.yaml").write_text(block.group(1), encoding="utf-8")
    ((logical_id, resource),) = load_template(tmp_path / "block.yaml").items()
    assert resource["Type"] == "AWS::Serverless::Function" and "LoggingConfig" not in resource["Properties"]
    module, name = re.search(r"^from (parley[\w.]*config) import (\w+Env)", python.group(1), re.M).groups()
    reads, required = _reads(getattr(importlib.import_module(module), name))
    given = resource["Properties"]["Environment"]["Variables"]
    assert required <= set(given) <= reads, logical_id
    # each variable wired as the template wires it for the functions that read it
    wired = {k: v for other in FUNCTIONS for k, v in _variables(other).items() if _wired(v)}
    assert all(given[k] == wired[k] for k in given), logical_id
    assert f"{logical_id} -e events/" in section  # its one test: a sample event through the handler
    # what the handler takes from the platform exists where the page says (the domain module is the example's own)
    for module, names in re.findall(r"^from (parley\.core[\w.]*) import ([\w, ]+)", python.group(1), re.M):
        for imported in (n.strip() for n in names.split(",")):
            assert hasattr(importlib.import_module(module), imported) or importlib.import_module(f"{module}.{imported}")


def test_no_managed_full_access_policies_anywhere() -> None:
    assert not re.search(r"FullAccess", (ROOT / "template.yaml").read_text(encoding="utf-8"))


def test_no_wildcard_actions() -> None:
    for logical_id, statement in _statements():
        for action in _as_list(statement.get("Action", [])):
            assert action != "*" and not str(action).endswith(":*"), (logical_id, action)


def test_resource_star_only_for_actions_that_cannot_be_scoped() -> None:
    for logical_id, statement in _statements():
        if statement.get("Effect", "Allow") != "Allow":
            continue
        if "*" in _as_list(statement.get("Resource")):
            extra = set(_as_list(statement["Action"])) - RESOURCE_STAR_ALLOWED
            assert not extra, f"{logical_id} grants {sorted(extra)} on '*'"


def test_secrets_and_buckets_are_granted_one_by_one() -> None:
    for logical_id, statement in _statements():
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        resources = _text(statement.get("Resource"))
        if any(a.startswith("secretsmanager:") for a in actions):
            named = "AnthropicSecretName" in resources or "owner-hash-key" in resources
            assert named and "*" not in resources.replace("-*", ""), logical_id
        if any(a.startswith("s3:") for a in actions) and statement.get("Effect", "Allow") == "Allow":
            assert "AudioBucket" in resources or "PromptFilesBucket" in resources, (logical_id, resources)


def test_cors_is_never_a_wildcard_and_prod_uses_cognito() -> None:
    assert "*" not in str(TEMPLATE["Parameters"]["CorsAllowOrigin"]["Default"])
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert {"default", "dev", "prod"} <= set(config)
    prod = config["prod"]["deploy"]["parameters"]["parameter_overrides"]
    assert "AuthMode=cognito" in prod
    origin = re.search(r"CorsAllowOrigin=(\S+)", prod)
    assert origin and "*" not in origin.group(1) and origin.group(1).startswith("https://")


def _overrides(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split())


def test_each_environment_is_its_own_stack_and_device_mode_is_explicit() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    deploys = {env: section["deploy"]["parameters"] for env, section in config.items()
               if isinstance(section, dict) and "deploy" in section}
    # A plain `sam deploy` is exactly `--config-env dev`: it can no longer switch dev to device auth.
    assert deploys["default"] == deploys["dev"]
    named = {env: d for env, d in deploys.items() if env != "default"}
    stacks = [d["stack_name"] for d in named.values()]
    stages = [_overrides(d["parameter_overrides"])["Stage"] for d in named.values()]
    assert len(set(stacks)) == len(stacks) and len(set(stages)) == len(stages)  # no two share resources
    assert all(d["s3_prefix"] == d["stack_name"] for d in deploys.values())
    device = [env for env, d in named.items() if _overrides(d["parameter_overrides"]).get("AuthMode") == "device"]
    assert device == ["demo"]
    assert all(_overrides(d["parameter_overrides"]).get("AuthMode") for d in deploys.values())  # always chosen
    allowed = TEMPLATE["Parameters"]["Stage"]["AllowedValues"]
    assert all(stage in allowed for stage in stages)


def test_every_state_machine_definition_exists_and_every_substitution_is_used() -> None:
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::StateMachine":
            continue
        props = resource["Properties"]
        definition = (ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
        json.loads(definition)
        used = set(re.findall(r"\$\{(\w+)\}", definition))
        given = set(props.get("DefinitionSubstitutions", {}))
        assert used <= given, (logical_id, used - given)
        assert props.get("Logging") and props.get("Tracing", {}).get("Enabled") is True, logical_id


def test_outputs_name_the_api_table_bucket_and_bus() -> None:
    assert {"ApiUrl", "TableName", "AudioBucketName", "EventBusName"} <= set(TEMPLATE["Outputs"])


def test_no_machine_paths_or_secrets_in_the_repository() -> None:
    # Spelled in pieces so that this file does not match itself.
    pattern = re.compile("(" + "|".join(["/" + "work/", "/home/\\w+", "/Users/\\w+", "/" + "root/",
                                        "sk-" + "ant-[A-Za-z0-9_-]{24,}", "AK" + "IA[0-9A-Z]{16}"]) + ")")
    skip = {".venv", ".venv-lint", ".git", ".aws-sam", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache",
            ".mypy_cache"}
    offenders = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip]  # never descend into virtualenvs, builds, caches
        for path in (Path(folder) / name for name in files):
            offenders += _machine_paths_in(path, pattern)
    assert not offenders, offenders


def _machine_paths_in(path: Path, pattern: re.Pattern[str]) -> list[str]:
    text_file = path.suffix in {".py", ".json", ".yaml", ".toml", ".md", ".txt", ".sh"} or path.name in {
        "Makefile", "run"}
    if text_file and pattern.search(path.read_text(encoding="utf-8", errors="replace")):
        return [str(path.relative_to(ROOT))]
    return []


# -- alarms: stacks/monitoring.yaml -----------------------------------------------------------------------
MONITORED = MONITORING["Resources"]
ALARMS = {k: v["Properties"] for k, v in MONITORED.items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def _query(alarm: dict[str, Any]) -> str:
    (query,) = [m["Expression"]["Fn::Sub"] for m in alarm["Metrics"] if m.get("ReturnData")]
    return " ".join(str(query).split())


def test_every_function_is_alarmed_by_one_query_over_the_stack_with_no_list_of_functions() -> None:
    # The seed's table: errors over 1 % of invocations, duration over 30 s; each function a contributor.
    lambda_metrics = 'FROM SCHEMA("AWS/Lambda", FunctionName)'
    for alarm, select, threshold in [("FunctionErrorRateAlarm", "SELECT AVG(Errors)", 0.01),
                                     ("FunctionDurationAlarm", "SELECT MAX(Duration)", 30000)]:
        props = ALARMS[alarm]
        query = _query(props)
        assert query.startswith(select) and lambda_metrics in query, query
        assert "WHERE tag.\"aws:cloudformation:stack-name\" = '${ParentStackName}'" in query
        assert "GROUP BY FunctionName ORDER BY" in query  # a multi time series alarm: one contributor each
        assert props["Threshold"] == threshold and props["ComparisonOperator"] == "GreaterThanThreshold"
        assert not any(name in _text(props) for name in FUNCTIONS)  # nothing per function to keep up to date
    assert RESOURCES["Monitoring"]["Properties"]["Parameters"]["ParentStackName"] == {"Ref": "AWS::StackName"}
    # The tag query needs "resource tags for telemetry" on: the stack turns it on, or is told it is.
    assert MONITORED["TelemetryResourceTagsSetting"]["Condition"] == "CreateTelemetryResourceTags"


def test_every_state_machine_is_alarmed_through_the_arn_the_parent_passes() -> None:
    passed = RESOURCES["Monitoring"]["Properties"]["Parameters"]
    for logical_id in STATE_MACHINES:
        parameter = f"{logical_id}Arn"
        assert passed[parameter] == {"Ref": logical_id}
        watching = [a for a in ALARMS.values() if _text({"Ref": parameter}) in _text(a.get("Metrics"))]
        assert len(watching) == 1 and watching[0]["Threshold"] == 0, logical_id
        metrics = set(re.findall(r'"MetricName": "(\w+)"', _text(watching[0])))
        assert {"ExecutionsFailed", "ExecutionsTimedOut"} <= metrics, logical_id


def test_the_seed_monitoring_table_is_alarmed() -> None:
    api = ALARMS["Api5xxAlarm"]
    assert api["MetricName"] == "5XXError" and api["Threshold"] == 0.001
    assert {"ReadThrottleEvents", "WriteThrottleEvents"} <= set(re.findall(r'"MetricName": "(\w+)"',
                                                                          _text(ALARMS["TableThrottlingAlarm"])))
    assert ALARMS["UsageDlqAlarm"]["Threshold"] == 0
    assert any("ProviderFailures" in _text(a) for a in ALARMS.values())
    assert any("ProviderConfigErrors" in _text(a) for a in ALARMS.values())
    assert all("AlarmActions" in a for a in ALARMS.values())
    names = [_text(a["AlarmName"]) for a in ALARMS.values()]
    assert all("parley-${Stage}-alarm-" in name for name in names) and len(set(names)) == len(names)
    # Every parameter the parent passes is one the monitoring stack declares, and the other way round.
    assert set(RESOURCES["Monitoring"]["Properties"]["Parameters"]) == set(MONITORING["Parameters"])


def test_only_the_authorizers_may_read_the_owner_hash_key() -> None:
    readers = sorted({logical_id for logical_id, statement in _statements()
                      if "owner-hash-key" in _text(statement.get("Resource"))})
    assert readers == ["AuthorizerFunction", "WsAuthorizerFunction"]
    assert RESOURCES["OwnerHashKey"]["Properties"]["Name"] == {"Fn::Sub": "parley/${Stage}/owner-hash-key"}
    assert "OwnerHashKey" not in _text(TEMPLATE["Globals"])  # not in every function's environment


def test_each_identity_and_each_ip_is_throttled_on_the_rest_stage() -> None:
    acl = RESOURCES["RestApiWebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    keyed = {}
    for rule in acl["Rules"]:
        statement = rule["Statement"]["RateBasedStatement"]
        assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
        keyed[rule["Name"]] = [k["Header"]["Name"] for k in statement.get("CustomKeys", [])] or statement[
            "AggregateKeyType"]
    assert keyed == {"per-device-id": ["x-device-id"], "per-token": ["authorization"], "per-ip": "IP"}
    assert "restapis/${RestApi}/stages/${RestApi.Stage}" in _text(
        RESOURCES["RestApiWebAclAssociation"]["Properties"]["ResourceArn"])
    # the shared app key has no daily quota one user could use up for everyone
    assert "Quota" not in RESOURCES["RestApi"]["Properties"]["Auth"]["UsagePlan"]
    assert not acl["VisibilityConfig"]["SampledRequestsEnabled"]  # samples would keep device ids
