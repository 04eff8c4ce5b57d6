"""Fuzz the REST API with schemathesis, against the local stack, from the generated OpenAPI document.

    python -m local_stack.fuzz --max-examples 150     # make fuzz: well over 1,000 requests

Starts the local stack in this process on a free port, runs schemathesis' CLI against its
``/openapi.json`` with a device id, and fails unless every response is below 500 and conforms
to the schema (status code and body) documented for it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .server import LocalStack

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def run(max_examples: int, seed: int | None = None, workers: int = 1, phases: str | None = None
        ) -> tuple[int, int, str]:
    """Returns (exit code, requests generated, schemathesis output)."""
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    local = LocalStack(port=0).start()
    try:
        command = [st, "run", f"{local.url}/openapi.json", "-H", "X-Device-Id: fuzz-device-0001",
                   "--max-examples", str(max_examples), "--checks", CHECKS, "--workers", str(workers),
                   "--no-color"]
        if seed is not None:
            command += ["--seed", str(seed)]
        if phases:
            command += ["--phases", phases]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3000, check=False)
    finally:
        local.stop()
    output = done.stdout + done.stderr
    found = re.search(r"(\d+) generated", output)
    return done.returncode, int(found.group(1)) if found else 0, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=150)
    parser.add_argument("--min-requests", type=int, default=1000, help="fail if fewer requests were generated")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--phases", help="schemathesis phases, e.g. fuzzing (default: all)")
    args = parser.parse_args()
    code, generated, output = run(args.max_examples, args.seed, phases=args.phases)
    print(output)
    print(f"fuzz: {generated} generated requests, schemathesis exit code {code}")
    if code != 0:
        sys.exit(code)
    if generated < args.min_requests:
        sys.exit(f"fuzz: only {generated} requests (< {args.min_requests}); raise --max-examples")


if __name__ == "__main__":
    main()
