"""Deployment package sizes: each function's zip and the layer's, from a real `sam build`.

Runs ``sam build`` (no container) into a temporary folder and zips every built artifact the way
``sam deploy`` uploads it. Target: each function's zip <= 1 MB (its code only; boto3 comes from the
runtime and the shared code from the layer). Needs the SAM CLI (``make lint`` installs it).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.registry import benchmark

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1024 * 1024


def zipped_size(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.tell()


def build(into: Path) -> None:
    sam = shutil.which("sam") or str(Path(sys.executable).with_name("sam"))
    if not Path(sam).exists():
        raise RuntimeError("the SAM CLI is not installed: run `make lint` once (it installs it into .venv)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    subprocess.run([sam, "build", "--region", "us-east-1", "--build-dir", str(into), "--cached", "--cache-dir",
                    str(ROOT / ".aws-sam" / "cache")], cwd=ROOT, env=env, check=True, capture_output=True, timeout=1800)


@benchmark("package-size", "zipped size of each function and of the layer, from sam build (target <= 1 MB each)")
def package_size(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "build"
        try:
            build(out)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"  skipped: {exc}")
            return
        rows = sorted((zipped_size(p), p.name) for p in out.iterdir() if p.is_dir())
    print(f"  {'artifact':<32} {'zip KB':>9} {'vs 1 MB':>8}")
    for size, name in rows:
        kind = "layer" if name.endswith("Layer") else "function"
        verdict = "" if kind == "layer" else ("  met" if size <= LIMIT else "  MISSED")
        print(f"  {name:<32} {size / 1024:>9.1f} {size / LIMIT:>7.3f}x{verdict}")
