"""The API reference page, rendered from openapi.json when the site is built (never kept by hand).

    python -m docsite.api_reference            # print the page's Markdown

``docsite/hooks.py`` adds it to the site as ``api/reference.md``; ``make openapi`` regenerates
openapi.json from the handlers, and a test keeps the committed document current, so the page
always says what the code does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")
TAG_TITLES = {
    "Tutor": "Settings, sessions, messages and chat",
    "Speech": "Speech and transcription",
    "Analysis": "Analysis",
    "Proofreading": "Proofreading",
    "Usage": "Usage",
}
TAG_GUIDES = {
    "Tutor": "[Settings, sessions, messages](tutor.md) and [Chat](chat.md)",
    "Speech": "[Speech](speech.md)",
    "Analysis": "[Analysis](analysis.md)",
    "Proofreading": "[Proofreading](proofreading.md)",
    "Usage": "[Usage and quotas](usage.md)",
}


def anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def operation_anchor(method: str, path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def _cell(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().replace("|", "\\|")


def _literal(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def type_of(schema: dict[str, Any]) -> str:
    """A schema in a few words: `string`, `array of [Message](#schema-message)`, `"US"`, `"UK"`…"""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{anchor(name)})"
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return " \\| ".join(_literal(value) for value in schema["enum"])
    for combiner in ("anyOf", "oneOf"):
        if combiner in schema:
            options = [option for option in schema[combiner] if option.get("type") != "null"]
            text = " or ".join(type_of(option) for option in options)
            return text + (" or `null`" if len(options) < len(schema[combiner]) else "")
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_of(schema["allOf"][0])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items') or {})}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        return f"object of {type_of(extra)}" if isinstance(extra, dict) and extra else "object"
    if isinstance(kind, list):
        return " or ".join(f"`{k}`" for k in kind)
    if kind:
        return f"`{kind}`" + (f" ({schema['format']})" if "format" in schema else "")
    return "any"


def constraints(schema: dict[str, Any]) -> str:
    """Lengths, ranges, patterns and the default, from the schema and the options of an anyOf."""
    parts: list[str] = []
    for part in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        if "minLength" in part or "maxLength" in part:
            parts.append(f"{part.get('minLength', 0)}–{part['maxLength']} characters" if "maxLength" in part
                         else f"at least {part['minLength']} characters")
        if "minimum" in part or "maximum" in part:
            low, high = part.get("minimum"), part.get("maximum")
            fmt = lambda number: f"{number:g}" if isinstance(number, float) else str(number)  # noqa: E731
            parts.append(f"{fmt(low)}–{fmt(high)}" if low is not None and high is not None
                         else f"≥ {fmt(low)}" if low is not None else f"≤ {fmt(high)}")
        if "exclusiveMinimum" in part:
            parts.append(f"> {part['exclusiveMinimum']}")
        if "maxItems" in part or "minItems" in part:
            parts.append(f"{part.get('minItems', 0)}–{part.get('maxItems', '∞')} items")
        if "pattern" in part:
            parts.append(f"pattern `{part['pattern']}`")
    if "default" in schema and schema["default"] is not None:
        parts.append(f"default {_literal(schema['default'])}")
    return "; ".join(dict.fromkeys(parts))


def _describe(schema: dict[str, Any]) -> str:
    text = schema.get("description", "")
    extra = constraints(schema)
    return _cell(f"{text} ({extra})" if text and extra else text or extra)


def render_schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name} {{ #{anchor(name)} }}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    properties = schema.get("properties") or {}
    if not properties:
        lines += [f"Type: {type_of(schema)}.", ""]
        return lines
    required = set(schema.get("required") or [])
    lines += ["| Field | Type | Required | Description |", "| --- | --- | --- | --- |"]
    for field, spec in properties.items():
        lines.append(f"| `{field}` | {type_of(spec)} | {'yes' if field in required else ''} | {_describe(spec)} |")
    if schema.get("additionalProperties") is False:
        lines += ["", "Other fields are refused (`422 VALIDATION_ERROR`)."]
    lines.append("")
    return lines


def _body_schema(holder: dict[str, Any]) -> tuple[str, str]:
    for content_type, media in (holder.get("content") or {}).items():
        return content_type, type_of(media.get("schema") or {})
    return "", ""


def render_operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    title = operation.get("summary") or operation.get("operationId", "")
    lines = [f"### `{method.upper()} {path}` — {title} {{ #{operation_anchor(method, path)} }}", ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    parameters = operation.get("parameters") or []
    if parameters:
        lines += ["| Parameter | In | Type | Required | Description |", "| --- | --- | --- | --- | --- |"]
        for parameter in parameters:
            schema = parameter.get("schema") or {}
            description = parameter.get("description") or schema.get("description", "")
            extra = constraints(schema)
            text = _cell(f"{description} ({extra})" if description and extra else description or extra)
            lines.append(f"| `{parameter['name']}` | {parameter['in']} | {type_of(schema)} | "
                         f"{'yes' if parameter.get('required') else ''} | {text} |")
        lines.append("")
    if "requestBody" in operation:
        content_type, body = _body_schema(operation["requestBody"])
        lines += [f"Request body ({content_type}): {body}.", ""]
    lines += ["| Status | Meaning | Body |", "| --- | --- | --- |"]
    responses = operation.get("responses") or {}
    for status in sorted(responses, key=lambda code: (code[0], code != code.upper(), code)):
        _, body = _body_schema(responses[status])
        lines.append(f"| {status} | {_cell(responses[status].get('description', ''))} | {body} |")
    lines.append("")
    return lines


def render(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    lines = [
        "# API reference",
        "",
        f"{info.get('title', 'The API')} {info.get('version', '')}: every operation of the REST API and every "
        "schema it reads or answers, rendered from the OpenAPI document (`openapi.json`, generated from the "
        "handlers by `make openapi`) each time the site is built, so it always says what the code does. "
        "The guides beside it say how to use the operations together; `make run` serves the same document "
        "at `/openapi.json` and an interactive explorer at `/docs`.",
        "",
        "Every operation needs credentials ([Authentication](index.md#authentication)): "
        + ", ".join(f"`{name}` ({scheme.get('description', scheme.get('type', ''))})"
                    for name, scheme in document.get("components", {}).get("securitySchemes", {}).items())
        + ". Every error answers the [Error](#schema-error) body ([Errors](index.md#errors)).",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in document.get("paths", {}).items():
        for method in METHODS:
            if method in operations:
                tag = (operations[method].get("tags") or ["Other"])[0]
                by_tag.setdefault(tag, []).append((method, path, operations[method]))
    order = [tag for tag in TAG_TITLES if tag in by_tag] + sorted(set(by_tag) - set(TAG_TITLES))
    lines += ["## Operations", ""]
    for tag in order:
        lines += [f"| {TAG_TITLES.get(tag, tag)} | |", "| --- | --- |"]
        for method, path, operation in by_tag[tag]:
            lines.append(f"| [`{method.upper()} {path}`](#{operation_anchor(method, path)}) | "
                         f"{_cell(operation.get('summary', ''))} |")
        lines.append("")
    for tag in order:
        lines += [f"## {TAG_TITLES.get(tag, tag)}", ""]
        if tag in TAG_GUIDES:
            lines += [f"The guide: {TAG_GUIDES[tag]}.", ""]
        for method, path, operation in by_tag[tag]:
            lines += render_operation(method, path, operation)
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += render_schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def render_file(path: Path = OPENAPI) -> str:
    return render(json.loads(path.read_text(encoding="utf-8")))


if __name__ == "__main__":
    print(render_file(), end="")
