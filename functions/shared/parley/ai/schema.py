"""A JSON schema in the subset the engines' structured output enforces.

Claude's structured output (Claude API ``output_config.format``, Bedrock Converse
``outputConfig.textFormat``) compiles the schema into a grammar and supports a subset of JSON
Schema: every object must say ``additionalProperties: false``, and length, size and range limits
(``maxLength``, ``maximum``, ``maxItems``, ``minItems`` above 1...) are not enforced. Those limits are
moved into the field's description here - the model still reads them - and the answer is validated
with the pydantic model afterwards, which does enforce them (a violation is invalid output, asked for
once more).
"""

from __future__ import annotations

from typing import Any

_KEEP = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
         "allOf", "$ref", "$defs", "description", "title", "format", "minItems"}
_FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}


def _unsupported(key: str, value: Any) -> bool:
    """Kept keywords with values the engines do not enforce: unknown string formats, ``minItems`` > 1."""
    return (key == "format" and value not in _FORMATS) or (key == "minItems" and value not in (0, 1))


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with only what the engines enforce; the rest moved into descriptions."""
    out: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            out[key] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = strict_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out["anyOf" if key == "oneOf" else key] = [strict_schema(sub) for sub in value]
        elif key in _KEEP and not _unsupported(key, value):
            out[key] = value
        else:
            moved[key] = value
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
    if moved:
        note = ", ".join(f"{key}: {value}" for key, value in sorted(moved.items()))
        out["description"] = f"{out['description']} ({note})" if out.get("description") else f"({note})"
    return out
