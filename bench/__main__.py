"""``python -m bench [--runs N] [name ...]``: run the registered benchmarks (all by default)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench.registry import BENCHMARKS


def discover() -> None:
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in {"__main__", "registry"}:
            importlib.import_module(f"bench.{module.name}")


def main(argv: list[str]) -> int:
    discover()
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(sorted(BENCHMARKS))}")
    parser.add_argument("--runs", type=int, default=7, help="repetitions per measurement (median reported)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    for name in args.names or sorted(BENCHMARKS):
        bench = BENCHMARKS[name]
        print(f"\n== {bench.name}: {bench.summary}")
        bench.run(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
