"""Cold start: how long a function's handler module takes to import in a fresh interpreter.

Each measurement starts a new Python process with the function's environment as the template
gives it, plus the variables the Lambda runtime sets (``LAMBDA_TASK_ROOT`` ...) and the overrides
named, imports the handler file the way the Lambda runtime does, and reports the import time
measured inside that process (interpreter start-up excluded). Two baselines are measured in the
same run, interleaved with the others so machine load affects all of them alike: a bare handler
that only does ``import boto3`` (the runtime provides boto3), and the libraries' floor
(``FLOOR_HANDLER``: a boto3 client, a Powertools REST resolver with validation, Logger, Tracer and
one pydantic model), what any handler built on these libraries pays before its own code. A request
handler (one API Gateway calls per request) should import in at most 1.1 times the floor. Packages
come from the dev virtualenv, which holds more than the layer does (httpx, requests, ...): code that
imports whatever happens to be installed costs more here than in Lambda.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bench.registry import benchmark
from local_stack.template import Stack

ROOT = Path(__file__).resolve().parent.parent
BARE_HANDLER = "import boto3\n\n\ndef handler(event, context):\n    return {}\n"
# The libraries' floor. The tracer patches botocore only, as parley.core.observability's does (patching
# every installed library it knows would charge the floor for imports no Parley handler makes).
FLOOR_HANDLER = '''import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
app = APIGatewayRestResolver(enable_validation=True)
table = boto3.client("dynamodb")


class Item(BaseModel):
    name: str


@app.post("/items")
def create_item(item: Item) -> Item:
    return item


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event, context):
    return app.resolve(event, context)
'''
FLOOR_TARGET = 1.1  # a request handler's import time, at most, in floors
_CHILD = """
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "anthropic": "anthropic" in sys.modules}))
"""


def runtime_env(handler: Path, name: str = "bare", handler_name: str = "app.handler") -> dict[str, str]:
    """The variables the Lambda runtime itself sets (a subset: those libraries look at during init).

    They matter: ``LAMBDA_TASK_ROOT`` is how the X-Ray SDK and Powertools' Tracer know they run in
    Lambda. Without it the SDK builds a centralized-sampling X-Ray client twice at import (a path
    Lambda never takes) and the Tracer switches itself off, so neither figure would be Lambda's.
    """
    return {"LAMBDA_TASK_ROOT": str(handler.parent), "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "_HANDLER": handler_name, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def function_env(logical_id: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The function's environment from the template, as Lambda would set it, plus overrides."""
    spec = Stack(parameters={"Stage": "bench", "AuthMode": "device"}).functions()[logical_id]
    handler = spec.code_uri / f"{spec.handler.rsplit('.', 1)[0]}.py"
    return {**spec.environment, **runtime_env(handler, spec.name, spec.handler), **overrides}


def import_once(handler: Path, env: Mapping[str, str]) -> tuple[float, bool]:
    child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT / "functions/shared"),
                 "PYTHONDONTWRITEBYTECODE": "1", **env}
    result = subprocess.run([sys.executable, "-c", _CHILD, str(handler)], env=child_env, cwd=handler.parent,
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"importing {handler} failed:\n{result.stderr}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), bool(data["anthropic"])


def compare(function: str, variants: Mapping[str, Mapping[str, str]], runs: int) -> None:
    """Median import time of ``function``'s handler under each env variant, vs a bare boto3 handler."""
    spec = Stack(parameters={"Stage": "bench", "AuthMode": "device"}).functions()[function]
    handler = spec.code_uri / f"{spec.handler.rsplit('.', 1)[0]}.py"
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "app.py"
        bare.write_text(BARE_HANDLER, encoding="utf-8")
        samples: dict[str, list[float]] = {"bare (import boto3)": []}
        loaded: dict[str, bool] = {}
        envs = {name: function_env(function, overrides) for name, overrides in variants.items()}
        for _ in range(runs):  # interleaved, so load on the machine hits every variant alike
            samples["bare (import boto3)"].append(import_once(bare, runtime_env(bare))[0])
            for name, env in envs.items():
                seconds, anthropic = import_once(handler, env)
                samples.setdefault(name, []).append(seconds)
                loaded[name] = anthropic
    base = statistics.median(samples["bare (import boto3)"])
    print(f"{function} ({handler.relative_to(ROOT)}), median of {runs} fresh interpreters:")
    print(f"  {'variant':<36} {'import s':>9} {'vs bare':>8}  anthropic imported")
    for name, values in samples.items():
        median = statistics.median(values)
        flag = "" if name not in loaded else ("yes" if loaded[name] else "no")
        print(f"  {name:<36} {median:>9.3f} {median / base:>7.1f}x  {flag}")


@benchmark("chat-cold-import", "POST /chat handler import time vs a bare `import boto3` handler")
def chat_cold_import(runs: int) -> None:
    compare("ChatFunction", {
        "chat, AI_PROVIDER=bedrock": {"AI_PROVIDER": "bedrock"},
        "chat, AI_PROVIDER=anthropic_api": {"AI_PROVIDER": "anthropic_api"},
    }, runs)


def request_handlers(stack: Stack) -> set[str]:
    """The functions API Gateway calls for a request: REST routes (``Api`` events), WebSocket
    routes and authorizers (their ``<Function>.Arn`` in an ``AWS::ApiGatewayV2`` resource)."""
    v2 = json.dumps([r for r in stack.resources.values() if str(r.get("Type", "")).startswith("AWS::ApiGatewayV2::")])
    return {logical_id for logical_id, spec in stack.functions().items()
            if any(e.get("Type") == "Api" for e in spec.events.values()) or f"{logical_id}.Arn" in v2}


@benchmark("cold-import-all", "every function's handler import time vs a bare `import boto3` handler and "
                              "the libraries' floor")
def all_cold_import(runs: int) -> None:
    """One row per function of the template (AI functions with AI_PROVIDER=bedrock, the default)."""
    stack = Stack(parameters={"Stage": "bench", "AuthMode": "device"})
    specs = stack.functions()
    requests = request_handlers(stack)
    runs = max(3, runs // 2)
    with tempfile.TemporaryDirectory() as tmp:
        baselines = {"bare": Path(tmp) / "bare" / "app.py", "floor": Path(tmp) / "floor" / "app.py"}
        for path, text in ((baselines["bare"], BARE_HANDLER), (baselines["floor"], FLOOR_HANDLER)):
            path.parent.mkdir()
            path.write_text(text, encoding="utf-8")
        base_samples: dict[str, list[float]] = {"bare": [], "floor": []}
        samples: dict[str, list[float]] = {}
        anthropic: dict[str, bool] = {}
        for _ in range(runs):  # interleaved with the baselines, so machine load hits all alike
            for name, path in baselines.items():
                base_samples[name].append(import_once(path, runtime_env(path))[0])
            for logical_id, spec in specs.items():
                handler = spec.code_uri / f"{spec.handler.rsplit('.', 1)[0]}.py"
                seconds, loaded = import_once(handler, function_env(logical_id, {}))
                samples.setdefault(logical_id, []).append(seconds)
                anthropic[logical_id] = loaded
    bare, floor = (statistics.median(base_samples[name]) for name in ("bare", "floor"))
    print(f"  median of {runs} fresh interpreters; bare `import boto3` handler: {bare:.3f} s; libraries' floor "
          f"(boto3 client, REST resolver with validation, Logger, Tracer, one pydantic model): {floor:.3f} s")
    print(f"  {'function':<32} {'import s':>9} {'vs bare':>8} {'vs floor':>9}  anthropic  "
          f"request handler <= {FLOOR_TARGET}x floor")
    over = []
    for logical_id, values in sorted(samples.items(), key=lambda kv: statistics.median(kv[1])):
        median = statistics.median(values)
        verdict = "-"
        if logical_id in requests:
            verdict = "met" if median <= FLOOR_TARGET * floor else "MISSED"
            over += [logical_id] if verdict == "MISSED" else []
        print(f"  {logical_id:<32} {median:>9.3f} {median / bare:>7.2f}x {median / floor:>8.2f}x"
              f"  {'yes' if anthropic[logical_id] else 'no':>9}  {verdict}")
    print(f"  request handlers over {FLOOR_TARGET}x the floor: {', '.join(over) if over else 'none'}")


@benchmark("measure-cold-import", "the analysis measure function's import (Harper's linter built at init) vs bare")
def measure_cold_import(runs: int) -> None:
    compare("AnalysisMeasureFunction", {"measure (imports parley, builds Harper)": {}}, runs)
