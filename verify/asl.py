"""The state machines as Step Functions receives them: DefinitionSubstitutions applied.

cfn-lint does not read ``.asl.json`` files and moto's interpreter accepts more than Step Functions
does, so `make verify` writes each definition with its substitutions filled in (from the transformed
template, resolved like CloudFormation) and runs ``asl-validator`` (npm, pinned in
verify/package.json) on it: the schema, every JSONPath, every Resource ARN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_stack.template import Stack

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substituted(definition: str, substitutions: Mapping[str, Any]) -> str:
    """``definition`` with each ``${Name}`` replaced, as CloudFormation does; an unknown one is an error."""
    missing = sorted(set(PLACEHOLDER.findall(definition)) - set(substitutions))
    if missing:
        raise ValueError(f"no DefinitionSubstitutions for {missing}")
    return PLACEHOLDER.sub(lambda m: str(substitutions[m.group(1)]), definition)


def write_definitions(raw_template: Mapping[str, Any], stack: Stack, root: Path, out: Path) -> list[Path]:
    """Each state machine of ``stack`` (the transformed template) with its substitutions, as
    ``out/<LogicalId>.asl.json``; the definition files come from ``raw_template``'s DefinitionUri."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine" or not stack.enabled(logical_id):
            continue
        uri = raw_template["Resources"][logical_id]["Properties"]["DefinitionUri"]
        values = stack.resolve((resource.get("Properties") or {}).get("DefinitionSubstitutions") or {})
        text = substituted((root / uri).read_text(encoding="utf-8"), values)
        json.loads(text)  # still JSON once filled in
        path = out / f"{logical_id}.asl.json"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
