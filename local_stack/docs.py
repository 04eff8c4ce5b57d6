"""Generated text, kept true by a test: the docs' parameter table.

    python -m local_stack.docs --write      # make docs: refresh docs/parameters.md

Each parameter's row comes from its own ``Description`` in template.yaml. (Nothing in template.yaml
itself is generated: the alarms cover every function with one query each, stacks/monitoring.yaml.)
"""

from __future__ import annotations

import argparse
import re

from .template import ROOT, load_template

PARAMETERS_PAGE = ROOT / "docs" / "parameters.md"
START, END = "<!-- section:parameters -->", "<!-- /section:parameters -->"


def parameters_table() -> str:
    template = load_template()
    rows = ["| Parameter | Default | Allowed | Meaning |", "| --- | --- | --- | --- |"]
    for name, spec in template["Parameters"].items():
        default = spec.get("Default", "")
        default_text = f"`{default}`" if str(default) != "" else "*(empty)*"
        allowed = ", ".join(f"`{v}`" for v in spec.get("AllowedValues", []))
        if not allowed and ("MinValue" in spec or "MaxValue" in spec):
            allowed = f"{spec.get('MinValue', '')}–{spec.get('MaxValue', '')}"
        meaning = re.sub(r"\s+", " ", str(spec.get("Description", ""))).strip().replace("|", "\\|")
        rows.append(f"| `{name}` | {default_text} | {allowed} | {meaning} |")
    return "\n".join(rows)


def section() -> str:
    return (f"{START}\nSet with `sam deploy --parameter-overrides Name=Value ...` or in `samconfig.toml`. "
            f"Generated from template.yaml by `make docs`.\n\n{parameters_table()}\n{END}")


def refreshed_parameters_page() -> str:
    text = PARAMETERS_PAGE.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _m: section(), text, count=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite docs/parameters.md")
    args = parser.parse_args()
    if args.write:
        PARAMETERS_PAGE.write_text(refreshed_parameters_page(), encoding="utf-8")
    else:
        print(section())


if __name__ == "__main__":
    main()
