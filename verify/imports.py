"""Every handler imported from `sam build`'s output, with its environment from the transformed template.

What a cold start does in Lambda, done here for each AuthMode x AiProvider: the function's folder and
the layer's ``python/`` folder on the path (nothing else: Python runs with ``-S``, no site-packages),
the function's environment variables exactly as the transformed template resolves them, then
``import app`` and the handler must be there. An import error, a missing dependency, or an
environment its config model refuses fails the check.

The layer is built for arm64 and this machine may not be: its compiled packages (pydantic_core,
jiter, cryptography, ...) cannot load here. For those - and only those - the same distribution at
the same version is taken from the test virtualenv, after checking that the layer's copy really is
aarch64 for CPython 3.11 and that the versions match. Every other module, ``parley`` and boto3
included, is imported from the build output.

Run as a script (``python -S verify/imports.py child ...``) this file is the child that imports;
imported, it is the parent that prepares and checks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

EM_AARCH64 = 183
ABI_TAG = re.compile(r"\.(cpython-(\d+)-[a-z0-9_]+-linux-gnu|abi3)\.so$")


# -- the parent ------------------------------------------------------------------------------------
def _distributions(site: Path) -> dict[str, tuple[str, Path]]:
    """Normalised distribution name -> (version, dist-info folder)."""
    found = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        found[re.sub(r"[-_.]+", "-", name).lower()] = (version, info)
    return found


def _top_level(info: Path) -> set[str]:
    """The top-level modules and packages a distribution installs (from its RECORD)."""
    names = set()
    record = info / "RECORD"
    if record.exists():
        for line in record.read_text(encoding="utf-8").splitlines():
            first = line.split(",", 1)[0].split("/", 1)[0]
            if first and not first.endswith((".dist-info", ".data")) and first != "..":
                names.add(first)
    return names


def native_problems(layer: Path, python_version: str) -> list[str]:
    """Each compiled module of the layer is aarch64 and built for the runtime's CPython."""
    problems = []
    wanted = python_version.replace(".", "")
    for so in sorted(layer.rglob("*.so")):
        with so.open("rb") as handle:
            header = handle.read(20)
        if header[:4] != b"\x7fELF" or int.from_bytes(header[18:20], "little") != EM_AARCH64:
            problems.append(f"{so.relative_to(layer)} is not an aarch64 ELF (the functions are arm64)")
        tag = ABI_TAG.search(so.name)
        if tag and tag.group(2) and tag.group(2) != wanted:
            problems.append(f"{so.relative_to(layer)} is built for CPython {tag.group(2)}, "
                            f"the runtime is {python_version}")
    return problems


def prepare_overlay(layer: Path, host_site: Path, overlay: Path, pinned: set[str]) -> tuple[list[str], list[str]]:
    """Link the host's copies of the layer's compiled distributions into ``overlay``; compare versions.

    Returns (problems, notes): a compiled or pinned distribution whose version differs is a problem
    (the tests would not run what ships); another difference is a note.
    """
    problems: list[str] = []
    notes: list[str] = []
    built, host = _distributions(layer), _distributions(host_site)
    overlay.mkdir(parents=True, exist_ok=True)
    for entry in overlay.iterdir():
        entry.unlink()
    for name, (version, info) in sorted(built.items()):
        modules = _top_level(info)
        compiled = any(((layer / m).is_dir() and any((layer / m).rglob("*.so"))) or m.endswith(".so") for m in modules)
        if name not in host:
            (problems if compiled or name in pinned else notes).append(
                f"{name} {version} is in the layer but not in the test virtualenv")
            continue
        if host[name][0] != version:
            (problems if compiled or name in pinned else notes).append(
                f"{name}: the layer has {version}, the test virtualenv {host[name][0]} (rebuild one of them)")
        if compiled:
            for module in _top_level(host[name][1]):
                source = host_site / module
                if source.exists() and not (overlay / module).exists():
                    (overlay / module).symlink_to(source)
    return problems, notes


def run(build: Path, functions_files: list[Path], overlay: Path, timeout: float = 300) -> list[str]:
    """Import every function of each ``functions-*.json`` in a child interpreter; the failures."""
    problems = []
    children = []
    for spec in functions_files:
        command = [sys.executable, "-S", str(Path(__file__).resolve()), "child", str(spec), str(build), str(overlay)]
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603 - ours
                                 text=True, env=env)
        children.append((spec, child))
    for spec, child in children:
        out, err = child.communicate(timeout=timeout)
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            problems.append(f"{spec.name}: the import check itself failed: {err.strip()[-2000:]}")
            continue
        problems += [f"{spec.stem}: {failure}" for failure in result["failures"]]
        print(f"  {spec.stem}: {result['imported']} handlers imported", file=sys.stderr)
    return problems


# -- the child (runs with -S: no site-packages, only what Lambda would have) -----------------------
def _child(spec_file: str, build: str, overlay: str) -> None:
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    layer = Path(build) / spec["layer"] / "python"
    here = Path(__file__).resolve().parent
    sys.path[:] = [overlay, str(layer), *(p for p in sys.path if p and Path(p).resolve() != here)]
    base = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "TZ": ":UTC",
            "AWS_REGION": spec["region"], "AWS_DEFAULT_REGION": spec["region"],
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec['runtime']}", "AWS_LAMBDA_LOG_FORMAT": "JSON"}
    failures, imported = [], 0
    for logical_id, function in sorted(spec["functions"].items()):
        folder = Path(build) / logical_id
        module_name, attribute = function["handler"].rsplit(".", 1)
        os.environ.clear()
        os.environ.update({**base, **function["environment"], "AWS_LAMBDA_FUNCTION_NAME": function["name"],
                           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function["memory"]),
                           "LAMBDA_TASK_ROOT": str(folder), "_HANDLER": function["handler"]})
        sys.path.insert(0, str(folder))
        try:
            loader = importlib.util.spec_from_file_location(f"handler_{logical_id}", folder / f"{module_name}.py")
            if loader is None or loader.loader is None:
                raise ImportError(f"no {module_name}.py in {folder}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
            if not callable(getattr(module, attribute, None)):
                raise AttributeError(f"{function['handler']} is not a function")
            imported += 1
        except Exception as exc:  # report every function, not just the first that fails
            frames = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in frames if f.filename.startswith(build)]  # the deepest line of the build's code
            where = (ours or frames)[-1]
            failures.append(f"{logical_id} ({function['handler']}): {type(exc).__name__}: {exc} "
                            f"[{Path(where.filename).name}:{where.lineno}]")
        finally:
            sys.path.remove(str(folder))
    print(json.dumps({"imported": imported, "failures": failures}))


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "child":
    _child(*sys.argv[2:])
