"""A short schemathesis run against the local stack (`make fuzz` is the long one, >1,000 requests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_fuzz_run_finds_no_5xx_and_no_response_outside_its_schema() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "local_stack.fuzz", "--max-examples", "3", "--phases", "fuzzing",
         "--min-requests", "50", "--seed", "20261122"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "generated requests, schemathesis exit code 0" in done.stdout
