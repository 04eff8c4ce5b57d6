"""IAM statements of the transformed template, linted, and the one list of actions granted on "*".

moto enforces no IAM: a statement naming an action that does not exist, or a resource of the wrong
type for the action, deploys fine and then denies every real request (a transcription job ARN on
``transcribe:StartTranscriptionJob`` did exactly that). parliament (github.com/duo-labs/parliament)
checks each statement against its copy of the Service Authorization Reference: the action exists,
each resource matches one of the action's resource types, each condition key applies.

``RESOURCE_LESS_ACTIONS`` is the only place that lets an action be granted on ``"*"``, each with the
reason; ``check_resource_star`` holds every ``"*"`` to it, and ``check_allow_list`` holds the list to
the reference (an action listed here must have no required resource type).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from local_stack.template import Stack

# Actions granted on "*", and why "*" is the only grant that works. Service Authorization Reference:
# docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
RESOURCE_LESS_ACTIONS: dict[str, str] = {
    "transcribe:StartTranscriptionJob": "no resource type (the job is created by the call); the grant is held to "
                                        "the audio bucket by the transcribe:OutputBucketName condition",
    "transcribe:StartStreamTranscriptionWebSocket": "no resource type; the only permission of the stream-URL role, "
                                                    "whose credentials sign the client's URL",
    "polly:SynthesizeSpeech": "its one resource type is an optional lexicon; we use none, and voices are not resources",
    "states:SendTaskSuccess": "no resource type: the task token names the execution",
    "xray:PutTraceSegments": "no resource type (X-Ray tracing of the state machines)",
    "xray:PutTelemetryRecords": "no resource type (X-Ray tracing of the state machines)",
    "xray:GetSamplingRules": "no resource type (X-Ray tracing of the state machines)",
    "xray:GetSamplingTargets": "no resource type (X-Ray tracing of the state machines)",
    "cloudwatch:PutMetricData": "no resource type; held to one namespace by the cloudwatch:namespace condition",
    "logs:CreateLogDelivery": "no resource type; Step Functions logging needs the log-delivery actions on \"*\"",
    "logs:GetLogDelivery": "no resource type (Step Functions logging)",
    "logs:UpdateLogDelivery": "no resource type (Step Functions logging)",
    "logs:DeleteLogDelivery": "no resource type (Step Functions logging)",
    "logs:ListLogDeliveries": "no resource type (Step Functions logging)",
    "logs:PutResourcePolicy": "no resource type (Step Functions logging writes the log group's resource policy)",
    "logs:DescribeResourcePolicies": "no resource type (Step Functions logging)",
    "logs:DescribeLogGroups": "Step Functions logging lists log groups, which names no one group",
}

# parliament findings that are accepted, and why.
ACCEPTED_FINDINGS: dict[str, str] = {
    "NO_VERSION": "SAM writes a function's inline policies without a Version, which IAM reads as 2008-10-17; "
                  "that version lacks only policy variables, and check_no_policy_variables keeps them out",
}


@dataclass(frozen=True)
class Statement:
    source: str  # "<logical id> <policy name>"
    statement: dict[str, Any]
    versioned: bool


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _documents(stack: Stack) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in stack.resources.items():
        if not stack.enabled(logical_id):
            continue
        kind, props = resource["Type"], resource.get("Properties") or {}
        if kind == "AWS::IAM::Role":
            # A conditional policy (SAM turns a function's !If policy into one) counts as its branch taken.
            for policy in stack.resolve(props.get("Policies") or []):
                yield f"{logical_id} {policy.get('PolicyName', '')}".strip(), policy["PolicyDocument"]
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield logical_id, props["PolicyDocument"]


def statements(stack: Stack) -> list[Statement]:
    """Every identity-policy statement of the enabled resources, intrinsics resolved."""
    found = []
    for source, document in _documents(stack):
        resolved = stack.resolve(document)
        for statement in _as_list(resolved.get("Statement", [])):
            found.append(Statement(source, statement, versioned="Version" in resolved))
    return found


def lint(items: list[Statement]) -> list[str]:
    """parliament's findings on each statement, as sentences (accepted ones left out)."""
    import parliament  # in .venv-lint only

    problems = []
    for item in items:
        # As IAM reads it: SAM's inline policies have no Version (parliament says NO_VERSION, accepted).
        document = {"Version": "2012-10-17", "Statement": [item.statement]} if item.versioned else {
            "Statement": [item.statement]}
        resources = [str(r) for r in _as_list(item.statement.get("Resource", []))]
        for finding in parliament.analyze_policy_string(json.dumps(document)).findings:
            detail = finding.detail
            if finding.issue == "RESOURCE_MISMATCH":
                detail = [d for d in detail if not _an_alternative_matches(str(d["action"]), resources)]
                if not detail:
                    continue
            if finding.issue not in ACCEPTED_FINDINGS:
                problems.append(f"{item.source}: {finding.issue} {detail} in {json.dumps(item.statement)}")
    return problems


def _an_alternative_matches(action: str, resources: list[str]) -> bool:
    """parliament wants a resource of *every* required type of an action; where the reference lists
    several (bedrock:InvokeModel takes a foundation model, an inference profile, ...) they are
    alternatives - a call names one - so one matching resource is enough. (The loose match: the strict
    one refuses a ":" in the id, which every versioned Bedrock model id has.)"""
    import parliament
    from parliament.statement import get_arn_format, get_privilege_info

    service, name = action.split(":", 1)
    info = get_privilege_info(service, name)
    required = [t["resource_type"] for t in info["resource_types"] if t["resource_type"].endswith("*")]
    if len(required) < 2:
        return False
    return any(parliament.is_arn_match(kind, get_arn_format(kind, info["service_resources"]), r)
               for kind in required for r in resources if r != "*")


def check_resource_star(items: list[Statement]) -> list[str]:
    problems = []
    for item in items:
        statement = item.statement
        if statement.get("Effect") != "Allow" or "*" not in _as_list(statement.get("Resource", [])):
            continue
        extra = sorted(set(map(str, _as_list(statement.get("Action", [])))) - set(RESOURCE_LESS_ACTIONS))
        if extra:
            problems.append(f"{item.source} grants {extra} on \"*\"; name the resources, or add the action to "
                            "verify.iam.RESOURCE_LESS_ACTIONS with the reason")
    return problems


def check_no_policy_variables(items: list[Statement]) -> list[str]:
    return [f"{item.source}: a policy variable in a policy without Version 2012-10-17 is read literally: "
            f"{json.dumps(item.statement)}" for item in items
            if not item.versioned and "${aws:" in json.dumps(item.statement)]


def check_allow_list(definitions: list[Mapping[str, Any]] | None = None) -> list[str]:
    """Each allow-listed action exists and has no required resource type in parliament's reference."""
    if definitions is None:
        import parliament  # in .venv-lint only

        definitions = parliament.iam_definition
    services = {s["prefix"]: s for s in definitions}
    problems = []
    for action in RESOURCE_LESS_ACTIONS:
        prefix, name = action.split(":", 1)
        privileges = {p["privilege"]: p for p in services.get(prefix, {}).get("privileges", [])}
        if name not in privileges:
            problems.append(f"RESOURCE_LESS_ACTIONS lists {action}, which the reference does not know")
            continue
        required = [t["resource_type"] for t in privileges[name]["resource_types"] if t["resource_type"].endswith("*")]
        if required:
            problems.append(f"RESOURCE_LESS_ACTIONS lists {action}, but it takes resources of type {required}: "
                            "grant those instead of \"*\"")
    return problems
