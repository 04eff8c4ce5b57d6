"""The checks `make verify` runs (verify/): each catches what it is there for, on the real template
and on a template broken on purpose. The checks that need SAM's translator, parliament or a build run
in `make verify` itself; these tests hold the rules they apply."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from local_stack.template import ROOT, load_template
from verify import asl, cfn, iam, imports
from verify.__main__ import runtime_problems

TEMPLATE = load_template()


def mutated(change: Any) -> dict[str, Any]:
    template = copy.deepcopy(TEMPLATE)
    change(template["Resources"], template)
    return template


# -- API Gateway's account-wide logging role -----------------------------------------------------------
def test_the_template_logs_only_after_the_account_role_for_every_choice() -> None:
    assert cfn.check_api_logging(TEMPLATE, {}) == []
    choices = TEMPLATE["Parameters"][cfn.LOGGING_ROLE_PARAMETER]["AllowedValues"]
    assert choices == ["create", "existing", "disabled"]
    assert TEMPLATE["Parameters"][cfn.LOGGING_ROLE_PARAMETER]["Default"] == "create"  # a first deploy works


def test_logging_without_the_account_role_parameter_fails() -> None:
    template = {"Resources": {"Api": {"Type": "AWS::Serverless::Api", "Properties": {
        "StageName": "dev", "AccessLogSetting": {"DestinationArn": "arn:aws:logs:us-east-1:1:log-group:x",
                                                 "Format": '{"id":"$context.requestId"}'}}}}}
    (problem,) = cfn.check_api_logging(template, {})
    assert "no ApiGatewayCloudWatchRole parameter" in problem and "must be set in account settings" in problem


@pytest.mark.parametrize(("stage", "unhook"), [
    ("RestApi", lambda r: r["RestApi"].pop("DependsOn")),
    ("WebSocketStage", lambda r: r["WebSocketStage"]["DependsOn"].remove("ApiGatewayLoggingReady")),
    ("RestApi", lambda r: r["ApiGatewayLoggingReady"].pop("Metadata")),
])
def test_a_stage_that_does_not_wait_for_the_account_setting_fails(stage: str, unhook: Any) -> None:
    problems = cfn.check_api_logging(mutated(lambda r, _: unhook(r)), {})
    assert any(p.startswith("ApiGatewayCloudWatchRole=create") and f"{stage} does not wait" in p for p in problems)


def test_disabled_logging_must_really_log_nothing() -> None:
    def always_log(resources: dict[str, Any], _: Any) -> None:
        props = resources["WebSocketStage"]["Properties"]
        props["AccessLogSettings"] = props["AccessLogSettings"]["Fn::If"][1]

    problems = cfn.check_api_logging(mutated(always_log), {})
    assert problems == ["ApiGatewayCloudWatchRole=disabled still logs: WebSocketStage (access logs)"]


def test_the_role_must_be_apigateways_with_the_push_policy() -> None:
    def weaken(resources: dict[str, Any], _: Any) -> None:
        resources["ApiGatewayCloudWatchLogsRole"]["Properties"]["ManagedPolicyArns"] = []

    assert any("lacks the AmazonAPIGatewayPushToCloudWatchLogs" in p
               for p in cfn.check_api_logging(mutated(weaken), {}))


def test_execution_logs_count_as_logging() -> None:
    def execution_logs(resources: dict[str, Any], _: Any) -> None:
        resources["WebSocketStage"]["Properties"]["DefaultRouteSettings"]["LoggingLevel"] = "INFO"

    problems = cfn.check_api_logging(mutated(execution_logs), {})
    assert problems == ["ApiGatewayCloudWatchRole=disabled still logs: WebSocketStage (execution logs)"]


def test_sam_makes_no_stray_stage_named_stage() -> None:
    assert TEMPLATE["Globals"]["Api"]["OpenApiVersion"] == "3.0.1"
    deployment = {"Resources": {"RestApiDeployment1a2b": {"Type": "AWS::ApiGateway::Deployment", "Properties": {
        "RestApiId": {"Ref": "RestApi"}, "StageName": "Stage"}}}}
    (problem,) = cfn.check_no_stray_stage(deployment)
    assert "a stage named 'Stage'" in problem and "OpenApiVersion" in problem
    del deployment["Resources"]["RestApiDeployment1a2b"]["Properties"]["StageName"]
    assert cfn.check_no_stray_stage(deployment) == []


# -- retention -----------------------------------------------------------------------------------------
def test_retained_resources_use_retain_except_on_create() -> None:
    assert cfn.check_retention(TEMPLATE) == []
    retained = sorted(k for k, r in TEMPLATE["Resources"].items() if r.get("DeletionPolicy") == "RetainExceptOnCreate")
    assert retained == ["ApiGatewayCloudWatchLogsRole", "PromptFilesBucket", "Table"]


def test_a_plain_retain_or_a_replacement_that_deletes_fails() -> None:
    def plain(resources: dict[str, Any], _: Any) -> None:
        resources["Table"]["DeletionPolicy"] = "Retain"
        del resources["PromptFilesBucket"]["UpdateReplacePolicy"]

    problems = cfn.check_retention(mutated(plain))
    assert len(problems) == 2
    assert problems[0].startswith("Table: DeletionPolicy Retain") and "already exists" in problems[0]
    assert problems[1].startswith("PromptFilesBucket: RetainExceptOnCreate without UpdateReplacePolicy")


# -- access logs ---------------------------------------------------------------------------------------
def test_access_log_lines_are_json_with_the_owner_hash() -> None:
    assert cfn.check_access_log_formats(TEMPLATE) == []
    formats = [f for r in TEMPLATE["Resources"].values() for f in cfn._access_log_formats(r)]
    assert len(formats) == 2
    for fmt in formats:
        assert '"ownerHash":"$context.authorizer.ownerHash"' in fmt and "principalId" not in fmt
        assert '"error":$context.error.messageString}' in fmt


def test_a_quoted_message_string_is_caught() -> None:
    def quote(resources: dict[str, Any], _: Any) -> None:
        setting = resources["WebSocketStage"]["Properties"]["AccessLogSettings"]["Fn::If"][1]
        message = "$context.error.messageString"
        setting["Format"] = setting["Format"].replace(f":{message}", f':"{message}"')

    (problem,) = cfn.check_access_log_formats(mutated(quote))
    assert problem.startswith("WebSocketStage: the access log format does not give JSON")


# -- CloudFormation's limits -----------------------------------------------------------------------------
def test_limit_margins_count_what_cloudformation_counts() -> None:
    template = {"Description": "d" * 10, "Parameters": {f"P{i}": {} for i in range(3)},
                "Outputs": {"O": {}}, "Resources": {f"R{i}": {"Type": "AWS::SNS::Topic"} for i in range(501)}}
    margins = {m.what: m for m in cfn.limit_margins(template, packaged_bytes=1_000)}
    assert (margins["resources"].used, margins["resources"].left) == (501, -1)
    assert margins["parameters"].used == 3 and margins["outputs"].used == 1
    assert margins["description bytes"].used == 10
    (problem,) = cfn.check_limits(margins.values())
    assert problem.startswith("over CloudFormation's limit - resources: 501 of 500 (-1 left")


# -- IAM -----------------------------------------------------------------------------------------------
def test_resource_star_is_only_for_allow_listed_actions_each_with_a_reason() -> None:
    assert all(len(reason) > 20 for reason in iam.RESOURCE_LESS_ACTIONS.values())
    items = [iam.Statement("Fn", {"Effect": "Allow", "Action": ["polly:SynthesizeSpeech", "s3:GetObject"],
                                  "Resource": "*"}, versioned=False),
             iam.Statement("Fn", {"Effect": "Allow", "Action": "polly:SynthesizeSpeech", "Resource": "*"}, False),
             iam.Statement("Fn", {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}, False)]
    (problem,) = iam.check_resource_star(items)
    assert "['s3:GetObject'] on \"*\"" in problem and "RESOURCE_LESS_ACTIONS" in problem


def test_the_allow_list_is_held_to_the_authorization_reference() -> None:
    definitions = [{"prefix": "transcribe", "privileges": [
        {"privilege": "StartTranscriptionJob", "resource_types": [{"resource_type": ""}]},
        {"privilege": "StartStreamTranscriptionWebSocket", "resource_types": [{"resource_type": "job*"}]}]}]
    problems = iam.check_allow_list(definitions)
    assert any("StartStreamTranscriptionWebSocket, but it takes resources of type ['job*']" in p for p in problems)
    assert not any("StartTranscriptionJob" in p for p in problems)
    assert any("polly:SynthesizeSpeech, which the reference does not know" in p for p in problems)


def test_policy_variables_need_a_versioned_policy() -> None:
    item = iam.Statement("Fn", {"Effect": "Allow", "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::b/${aws:userid}/*"}, versioned=False)
    assert len(iam.check_no_policy_variables([item])) == 1
    assert iam.check_no_policy_variables([iam.Statement("Fn", item.statement, versioned=True)]) == []


def test_start_transcription_job_is_granted_on_star_held_to_the_audio_bucket() -> None:
    statements = TEMPLATE["Resources"]["TranscriptionStateMachine"]["Properties"]["Policies"][-1]["Statement"]
    (start,) = [s for s in statements if "transcribe:StartTranscriptionJob" in json.dumps(s.get("Action"))]
    assert start["Action"] == "transcribe:StartTranscriptionJob" and start["Resource"] == "*"
    assert start["Condition"] == {"StringEquals": {"transcribe:OutputBucketName": {"Ref": "AudioBucket"}}}


# -- state machines --------------------------------------------------------------------------------------
def test_substitutions_fill_every_placeholder_or_fail() -> None:
    assert asl.substituted('{"A": "${X}", "B": "${Y}"}', {"X": "1", "Y": "arn:aws:x"}) == '{"A": "1", "B": "arn:aws:x"}'
    with pytest.raises(ValueError, match=r"no DefinitionSubstitutions for \['Y'\]"):
        asl.substituted('{"A": "${X}", "B": "${Y}"}', {"X": "1"})


# -- the runtime, named once ---------------------------------------------------------------------------
def test_the_runtime_is_named_once_and_the_layer_is_built_for_it() -> None:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    makefile = (ROOT / "functions/shared/Makefile").read_text(encoding="utf-8")
    assert TEMPLATE["Globals"]["Function"]["Runtime"] == "python3.11"
    assert runtime_problems(text, makefile, "python3.11") == []
    twice = text.replace("CompatibleArchitectures: [arm64]",
                         "CompatibleArchitectures: [arm64]\n      CompatibleRuntimes: [python3.11]")
    assert "names a Python runtime 2 times" in runtime_problems(twice, makefile, "python3.11")[0]
    assert "builds the layer for Python 3.11, the runtime is python3.12" in runtime_problems(
        text.replace("python3.11", "python3.12"), makefile, "python3.12")[0]


# -- handler imports from a build ------------------------------------------------------------------------
def elf(path: Path, machine: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF" + bytes(14) + machine.to_bytes(2, "little") + bytes(40))


def test_compiled_modules_must_be_aarch64_for_the_runtimes_python(tmp_path: Path) -> None:
    elf(tmp_path / "good" / "_fast.cpython-311-aarch64-linux-gnu.so", imports.EM_AARCH64)
    elf(tmp_path / "good" / "_abi.abi3.so", imports.EM_AARCH64)
    elf(tmp_path / "x86" / "_fast.cpython-311-x86_64-linux-gnu.so", 62)
    elf(tmp_path / "old" / "_fast.cpython-310-aarch64-linux-gnu.so", imports.EM_AARCH64)
    assert imports.native_problems(tmp_path / "good", "3.11") == []
    assert "is not an aarch64 ELF" in imports.native_problems(tmp_path / "x86", "3.11")[0]
    assert "built for CPython 310, the runtime is 3.11" in imports.native_problems(tmp_path / "old", "3.11")[0]


def dist(site: Path, name: str, version: str, files: list[str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in [*files, f"{info.name}/RECORD"]))
    for f in files:
        (site / f).parent.mkdir(parents=True, exist_ok=True)
        (site / f).write_text("")


def test_compiled_distributions_come_from_the_host_at_the_same_version(tmp_path: Path) -> None:
    layer, host, overlay = tmp_path / "layer", tmp_path / "host", tmp_path / "overlay"
    dist(layer, "fastlib", "2.0", ["fastlib/__init__.py", "fastlib/_core.cpython-311-aarch64-linux-gnu.so"])
    dist(host, "fastlib", "2.0", ["fastlib/__init__.py", "fastlib/_core.cpython-311-x86_64-linux-gnu.so"])
    dist(layer, "purelib", "1.0", ["purelib.py"])
    dist(host, "purelib", "1.1", ["purelib.py"])
    dist(layer, "pinnedlib", "3.0", ["pinnedlib.py"])
    dist(host, "pinnedlib", "3.1", ["pinnedlib.py"])

    problems, notes = imports.prepare_overlay(layer, host, overlay, pinned={"pinnedlib"})

    assert (overlay / "fastlib").resolve() == (host / "fastlib").resolve()  # only the compiled one is swapped
    assert not (overlay / "purelib.py").exists()
    assert problems == ["pinnedlib: the layer has 3.0, the test virtualenv 3.1 (rebuild one of them)"]
    assert notes == ["purelib: the layer has 1.0, the test virtualenv 1.1 (rebuild one of them)"]


def test_every_handler_is_imported_with_its_environment_and_failures_are_named(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "Layer" / "python").mkdir(parents=True)
    (build / "Layer" / "python" / "shared_thing.py").write_text("VALUE = 'from the layer'\n")
    (build / "GoodFunction").mkdir()
    (build / "GoodFunction" / "app.py").write_text(
        "import os, shared_thing\nTABLE = os.environ['TABLE_NAME']\n"
        "assert shared_thing.VALUE == 'from the layer'\nassert os.environ['AWS_LAMBDA_FUNCTION_NAME'] == 'good'\n"
        "def handler(event, context):\n    return TABLE\n")
    (build / "BadFunction").mkdir()
    (build / "BadFunction" / "app.py").write_text("import os\nTABLE = os.environ['TABLE_NAME']\n"
                                                  "def handler(event, context):\n    return TABLE\n")
    spec = tmp_path / "functions-test.json"
    spec.write_text(json.dumps({"region": "us-east-1", "runtime": "python3.11", "layer": "Layer", "functions": {
        "GoodFunction": {"handler": "app.handler", "name": "good", "memory": 128, "environment": {"TABLE_NAME": "t"}},
        "BadFunction": {"handler": "app.handler", "name": "bad", "memory": 128, "environment": {}}}}))
    (tmp_path / "overlay").mkdir()

    problems = imports.run(build, [spec], tmp_path / "overlay")

    assert problems == ["functions-test: BadFunction (app.handler): KeyError: 'TABLE_NAME' [app.py:2]"]


def test_the_child_sees_no_site_packages(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "Layer" / "python").mkdir(parents=True)
    (build / "Fn").mkdir()
    (build / "Fn" / "app.py").write_text("import pytest\ndef handler(event, context):\n    return 1\n")
    spec = tmp_path / "functions-x.json"
    spec.write_text(json.dumps({"region": "us-east-1", "runtime": "python3.11", "layer": "Layer", "functions": {
        "Fn": {"handler": "app.handler", "name": "fn", "memory": 128, "environment": {}}}}))
    (tmp_path / "overlay").mkdir()
    assert "pytest" in sys.modules  # here, yes; in a Lambda (and in the child), no
    assert imports.run(build, [spec], tmp_path / "overlay") == [
        "functions-x: Fn (app.handler): ModuleNotFoundError: No module named 'pytest' [app.py:1]"]
