"""template.yaml and samconfig.toml hold the promises the seeds broke: read them and check."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from local_stack.template import ROOT, load_template
from verify.iam import RESOURCE_LESS_ACTIONS

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}

# The one list of actions that may be granted on "*", each with its reason (make verify holds it to
# the Service Authorization Reference and lints every statement of the transformed template).
RESOURCE_STAR_ALLOWED = set(RESOURCE_LESS_ACTIONS)


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in RESOURCES.items():
        props = resource.get("Properties") or {}
        policies = props.get("Policies") or []
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in policies if isinstance(policies, list) else [policies]:
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


def test_globals_are_python311_arm64_traced() -> None:
    fn = TEMPLATE["Globals"]["Function"]
    assert fn["Runtime"] == "python3.11"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Tracing"] == "Active"
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(
        fn["Environment"]["Variables"])


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
def test_every_function_is_named_by_stage_and_logs_with_retention(logical_id: str) -> None:
    props = FUNCTIONS[logical_id]["Properties"]
    assert "${Stage}" in _text(props["FunctionName"]), logical_id
    group_ref = props["LoggingConfig"]["LogGroup"]["Ref"]
    group = RESOURCES[group_ref]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    name = _text(props["FunctionName"]).split("parley-${Stage}-", 1)[1].split('"')[0]
    assert _text(group["Properties"]["LogGroupName"]).endswith(f'/aws/lambda/parley-${{Stage}}-{name}"}}'), logical_id


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


def test_every_function_and_state_machine_is_alarmed() -> None:
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Serverless::Function":
            errors = RESOURCES[f"{logical_id}ErrorRateAlarm"]["Properties"]
            assert errors["Threshold"] == 1
            assert any("errors / invocations" in m.get("Expression", "") for m in errors["Metrics"])
            timeout = resource["Properties"].get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])
            assert (f"{logical_id}DurationAlarm" in RESOURCES) == (timeout > 30), logical_id
        if resource["Type"] == "AWS::Serverless::StateMachine":
            assert RESOURCES[f"{logical_id}FailuresAlarm"]["Properties"]["Threshold"] == 0


def test_the_seed_monitoring_table_is_alarmed() -> None:
    api = RESOURCES["Api5xxAlarm"]["Properties"]
    assert api["MetricName"] == "5XXError" and api["Threshold"] == 0.001
    assert RESOURCES["TableThrottlingAlarm"]["Type"] == "AWS::CloudWatch::Alarm"
    assert RESOURCES["UsageDlqAlarm"]["Properties"]["Threshold"] == 0
    alarms = [r for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert any("ProviderFailures" in _text(a) for a in alarms)
    assert all("AlarmActions" in a["Properties"] for a in alarms)


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
