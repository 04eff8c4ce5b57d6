"""template.yaml through SAM's translator, as `sam deploy` would send it, without an AWS account.

``sam package`` replaces each local CodeUri / ContentUri / DefinitionUri, and a nested stack's
TemplateURL, by the S3 object it uploaded; ``packaged`` does the same with S3 URIs of the length
``resolve_s3`` produces, so the translator accepts the template and the size measured is the size
CloudFormation gets.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

ARTIFACT_URI = "s3://aws-sam-cli-managed-default-samclisourcebucket-0123456789ab/parley-dev/0123456789abcdef0123456789abcdef"
ARTIFACT_URL = ("https://s3.us-east-1.amazonaws.com/aws-sam-cli-managed-default-samclisourcebucket-0123456789ab/parley-dev/"
                "0123456789abcdef0123456789abcdef.template")
_LOCAL_KEYS = ("CodeUri", "ContentUri", "DefinitionUri", "TemplateURL")
NESTED_STACK = "AWS::CloudFormation::Stack"


def packaged(template: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = copy.deepcopy(dict(template))
    for resource in copied.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        for key in _LOCAL_KEYS:
            if isinstance(props.get(key), str) and not props[key].startswith(("s3://", "https://")):
                # A nested template is uploaded as an https:// object URL; code as an s3:// URI.
                props[key] = ARTIFACT_URL if key == "TemplateURL" else ARTIFACT_URI
    return copied


def packaged_text(template_text: str) -> str:
    """template.yaml's text with its local artefact paths replaced as ``sam package`` would."""
    def uploaded(match: re.Match[str]) -> str:
        return match.group(1) + (ARTIFACT_URL if match.group(2) == "TemplateURL" else ARTIFACT_URI)

    return re.sub(rf"^(\s+({'|'.join(_LOCAL_KEYS)}):\s+)(?!s3://|https://)\S+$", uploaded, template_text,
                  flags=re.MULTILINE)


def nested_templates(template: Mapping[str, Any]) -> dict[str, str]:
    """The nested stacks' local template files, by the logical id of the stack resource."""
    return {logical_id: str(r["Properties"]["TemplateURL"]) for logical_id, r in template.get("Resources", {}).items()
            if r["Type"] == NESTED_STACK and not str(r["Properties"]["TemplateURL"]).startswith(("s3://", "https://"))}


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only for policies named by their bare name;
    this template names none (it uses statements, SAM policy templates and ARNs)."""

    def load(self) -> dict[str, str]:
        return {}


def transform(template: Mapping[str, Any], parameters: Mapping[str, str], region: str = "us-east-1") -> dict[str, Any]:
    from samtranslator.translator.transform import transform as sam_transform  # in .venv-lint only

    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    result: dict[str, Any] = sam_transform(packaged(template), dict(parameters), _NoManagedPolicies())
    return result
