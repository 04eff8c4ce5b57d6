"""`python -m verify template` (in .venv-lint) then `python -m verify imports` (in .venv): see the Makefile."""

from __future__ import annotations

import argparse
import json
import re
import sys
import sysconfig
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = re.compile(r"\bpython3\.\d+\b")
OTHER_PARAMETER_SETS: list[dict[str, str]] = [
    {"WebHosting": "enabled"}, {"SeedActions": "disabled"},
    {"ApiGatewayCloudWatchRole": "existing"}, {"ApiGatewayCloudWatchRole": "disabled"},
]


def _report(title: str, problems: Iterable[str]) -> int:
    unique = list(dict.fromkeys(problems))
    for problem in unique:
        print(f"FAIL {title}: {problem}", file=sys.stderr)
    return len(unique)


def runtime_problems(template_text: str, makefile_text: str, runtime: str) -> list[str]:
    """The runtime is named once in the template, and the layer is built for its Python."""
    code = "\n".join(line.split("#", 1)[0] for line in template_text.splitlines())
    problems = []
    named = RUNTIME.findall(code)
    if len(named) != 1:
        problems.append(f"the template names a Python runtime {len(named)} times ({named}); name it once, in "
                        "Globals.Function.Runtime")
    built_for = re.search(r"--python-version\s+(\S+)", makefile_text)
    if not built_for or f"python{built_for.group(1)}" != runtime:
        problems.append(f"functions/shared/Makefile builds the layer for Python {built_for and built_for.group(1)}, "
                        f"the runtime is {runtime}")
    return problems


def _env_value(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _functions_spec(stack: Any, raw: dict[str, Any], region: str) -> dict[str, Any]:
    layers = [lid for lid, r in raw["Resources"].items() if r["Type"] == "AWS::Serverless::LayerVersion"]
    globals_fn = raw.get("Globals", {}).get("Function", {})
    functions = {}
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::Lambda::Function" or not stack.enabled(logical_id):
            continue
        props = resource["Properties"]
        variables = stack.resolve((props.get("Environment") or {}).get("Variables") or {})
        functions[logical_id] = {
            "handler": props["Handler"], "name": stack.physical_name(logical_id),
            "memory": int(stack.resolve(props.get("MemorySize", 128))), "runtime": props.get("Runtime"),
            "environment": {k: _env_value(v) for k, v in variables.items()},
        }
    return {"region": region, "runtime": globals_fn.get("Runtime"), "layer": layers[0], "functions": functions}


def loader_problems(path: str, sam_reads: Any) -> list[str]:
    """SAM's YAML loader and the local stack's (PyYAML, which the tests use) must read a template alike:
    the template uses flow mappings, where YAML loaders differ most."""
    from local_stack.template import load_template

    ours = json.loads(json.dumps(load_template(ROOT / path), default=str))
    if ours == json.loads(json.dumps(sam_reads, default=str)):
        return []
    return [f"{path}: SAM's YAML loader and PyYAML read it differently (quote the plain scalars of its flow mappings)"]


def nested_step(raw: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Each nested stack's template (stacks/*.yaml): read alike, retention, and its own limits."""
    from samtranslator.yaml_helper import yaml_parse  # in .venv-lint only

    from . import cfn, translate

    problems: list[str] = []
    margins: list[Any] = []
    for path in translate.nested_templates(raw).values():
        text = (ROOT / path).read_text(encoding="utf-8")
        child = yaml_parse(text)
        problems += loader_problems(path, child) + cfn.check_retention(child)
        margins += [cfn.Margin(f"{path}: {m.what}", m.used, m.limit)
                    for m in cfn.limit_margins(child, len(text.encode()))
                    if m.what in ("resources", "outputs", "parameters", "packaged template bytes (uploaded to S3)")]
    return problems, margins


def template_step(out: Path) -> int:
    from samtranslator.yaml_helper import yaml_parse  # in .venv-lint only

    from . import asl, cfn, iam, translate

    started = time.monotonic()
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml_parse(text)
    runtime = str(raw["Globals"]["Function"]["Runtime"])
    nested_problems, nested_margins = nested_step(raw)
    failures = _report("template", [*loader_problems("template.yaml", raw), *cfn.check_retention(raw),
                                    *cfn.check_api_logging(raw, {}), *cfn.check_access_log_formats(raw)])
    failures += _report("nested stacks", nested_problems)
    failures += _report("runtime", runtime_problems(text, (ROOT / "functions/shared/Makefile").read_text(), runtime))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("functions-*.json"):
        old.unlink()
    parameters = raw["Parameters"]
    structure: list[str] = []
    policies: list[str] = []
    margins = None
    for auth in parameters["AuthMode"]["AllowedValues"]:
        for provider in parameters["AiProvider"]["AllowedValues"]:
            values = {"AuthMode": str(auth), "AiProvider": str(provider)}
            transformed = translate.transform(raw, values)
            stack = cfn.VerifyStack(transformed, parameters=values)
            structure += cfn.check_api_logging(transformed, values) + cfn.check_retention(transformed)
            structure += cfn.check_no_stray_stage(transformed)
            structure += [f"{lid} runs {r['Properties'].get('Runtime')}, not {runtime}"
                          for lid, r in stack.resources.items()
                          if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Runtime") != runtime]
            items = iam.statements(stack)
            policies += iam.lint(items) + iam.check_resource_star(items) + iam.check_no_policy_variables(items)
            spec = _functions_spec(stack, raw, stack.region)
            (out / f"functions-{auth}-{provider}.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
            if margins is None:
                margins = cfn.limit_margins(transformed, len(translate.packaged_text(text).encode()))
                written = asl.write_definitions(raw, stack, ROOT, out / "asl")
                (out / "asl-files.txt").write_text("\n".join(str(p) for p in written), encoding="utf-8")
                (out / "transformed.json").write_text(json.dumps(transformed, indent=1), encoding="utf-8")
    assert margins is not None
    margins += nested_margins
    # The switches that add or remove resources and grants, each once (structure and IAM only).
    for extra in OTHER_PARAMETER_SETS:
        if all(value in [str(v) for v in parameters.get(name, {}).get("AllowedValues", [])]
               for name, value in extra.items()):
            transformed = translate.transform(raw, extra)
            stack = cfn.VerifyStack(transformed, parameters=extra)
            structure += cfn.check_api_logging(transformed, extra) + cfn.check_retention(transformed)
            structure += cfn.check_no_stray_stage(transformed)
            items = iam.statements(stack)
            policies += iam.lint(items) + iam.check_resource_star(items) + iam.check_no_policy_variables(items)
    failures += _report("transformed template", structure)
    failures += _report("IAM", [*policies, *iam.check_allow_list()])
    failures += _report("CloudFormation limits", cfn.check_limits(margins))
    print("CloudFormation limits (transformed template):", file=sys.stderr)
    for margin in margins:
        print(f"  {margin.line()}", file=sys.stderr)
    (out / "limits.json").write_text(json.dumps([{"what": m.what, "used": m.used, "limit": m.limit} for m in margins],
                                                indent=1), encoding="utf-8")
    print(f"verify template: {len(list(out.glob('functions-*.json'))) + len(OTHER_PARAMETER_SETS)} parameter sets, "
          f"{'FAILED' if failures else 'ok'} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 1 if failures else 0


def imports_step(build: Path, out: Path) -> int:
    from . import imports

    started = time.monotonic()
    specs = sorted(out.glob("functions-*.json"))
    if not specs:
        print("FAIL imports: no functions-*.json; run `python -m verify template` first", file=sys.stderr)
        return 1
    first = json.loads(specs[0].read_text(encoding="utf-8"))
    layer = build / first["layer"] / "python"
    pinned = {re.sub(r"[-_.]+", "-", line.split("==")[0].split("[")[0]).strip().lower()
              for line in (ROOT / "functions/shared/requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    failures = _report("layer", imports.native_problems(layer, str(first["runtime"]).removeprefix("python")))
    host_site = Path(sysconfig.get_paths()["purelib"])
    problems, notes = imports.prepare_overlay(layer, host_site, out / "host-native", pinned)
    for note in notes:
        print(f"note layer: {note}", file=sys.stderr)
    failures += _report("layer", problems)
    failures += _report("imports", imports.run(build, specs, out / "host-native"))
    print(f"verify imports: {'FAILED' if failures else 'ok'} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__)
    parser.add_argument("step", choices=["template", "imports"])
    parser.add_argument("--build", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--out", type=Path, default=ROOT / ".aws-sam" / "verify")
    args = parser.parse_args(argv)
    if args.step == "template":
        return template_step(args.out)
    return imports_step(args.build, args.out)


if __name__ == "__main__":
    sys.exit(main())
