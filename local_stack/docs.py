"""Generated parts of the README: the template's parameter table.

    python -m local_stack.docs --write      # make docs: refresh README.md between its markers

Each parameter's row comes from its own ``Description`` in template.yaml, so the README cannot
drift from the template (a test compares them).
"""

from __future__ import annotations

import argparse
import re

from .template import ROOT, load_template

README = ROOT / "README.md"
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


def refreshed_readme() -> str:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _m: section(), text, count=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite README.md (otherwise print the section)")
    args = parser.parse_args()
    if args.write:
        README.write_text(refreshed_readme(), encoding="utf-8")
    else:
        print(section())


if __name__ == "__main__":
    main()
