"""The Lambda layers' sizes, built as ``sam build`` builds them (each layer's own Makefile).

Each layer's ``build-<Name>`` target installs its arm64 wheels into a temporary ARTIFACTS_DIR, as
SAM does; the report gives each layer unzipped (what counts against Lambda's 250 MB for a function
and its layers) and zipped (what is uploaded). The shared layer is on every function; the Harper
layer only on the functions that lint English. Needs the package registry (pip downloads the wheels).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from bench.package_size import zipped_size
from bench.registry import benchmark
from local_stack.template import ROOT, Stack

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def unzipped_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build_layer(logical_id: str, content: Path, into: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(content), f"build-{logical_id}", f"ARTIFACTS_DIR={into}"],
                   check=True, capture_output=True, timeout=900)


@benchmark("layer-sizes", "each Lambda layer's size built from its Makefile (unzipped vs Lambda's 250 MB, zipped)")
def layer_sizes(runs: int) -> None:
    stack = Stack(parameters={"Stage": "bench", "AuthMode": "device"})
    layers = {lid: ROOT / str(r["Properties"]["ContentUri"]) for lid, r in stack.resources.items()
              if r["Type"] == "AWS::Serverless::LayerVersion"}
    print(f"  {'layer':<16} {'unzipped MB':>12} {'zipped MB':>10} {'of 250 MB':>10}")
    for logical_id, content in sorted(layers.items()):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                build_layer(logical_id, content, Path(tmp))
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                print(f"  {logical_id:<16} skipped: {exc}")
                continue
            unzipped, zipped = unzipped_size(Path(tmp)), zipped_size(Path(tmp))
        print(f"  {logical_id:<16} {unzipped / 2**20:>12.1f} {zipped / 2**20:>10.1f} "
              f"{unzipped / LAMBDA_UNZIPPED_LIMIT:>9.1%}")
