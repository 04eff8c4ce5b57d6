"""The benchmark registry: a module adds a benchmark by decorating a function with it.

    from bench.registry import benchmark

    @benchmark("my-thing", "what it measures, in one line")
    def my_thing(runs: int) -> None:
        ...  # measure, then print its own small report

``python -m bench`` imports every module of the package, so a new file is all it takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Bench = Callable[[int], None]


@dataclass(frozen=True)
class Benchmark:
    name: str
    summary: str
    run: Bench


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, summary: str) -> Callable[[Bench], Bench]:
    def register(fn: Bench) -> Bench:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS[name] = Benchmark(name, summary, fn)
        return fn

    return register
