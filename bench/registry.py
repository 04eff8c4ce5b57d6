"""The benchmark registry: a module adds a benchmark by decorating a function with it.

    from bench.registry import benchmark

    @benchmark("my-thing", "what it measures, in one line")
    def my_thing(runs: int) -> None:
        ...  # measure, then print its own small report

``python -m bench`` imports every module of the package, so a new file is all it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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


def print_table(header: Sequence[str], rows: Iterable[Sequence[object]], *, left: int = 1, indent: str = "  ") -> None:
    """A benchmark's table: each column as wide as its widest cell, the first ``left`` columns
    left-aligned (names), the others right-aligned (figures: format them first, e.g. ``f"{ratio:.2f}x"``)."""
    cells = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    for row in cells:
        print(indent + "  ".join(cell.ljust(width) if column < left else cell.rjust(width)
                                 for column, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip())
