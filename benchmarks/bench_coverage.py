"""Coverage algebra at 10k and 100k ranges.

Targets (issue 5): every operation <= 100 ms at 100k ranges, and 10x the input costs at most
13x the time (O(n log n)). The targets apply to the algebra itself (the numpy ``*_array``
functions); the list API rows add building 100k Python `Range` tuples in and out and are
printed for information. Prints the median of several runs per operation and the ratios:
  .venv/bin/python benchmarks/bench_coverage.py
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from seamless.data import coverage as cov
from seamless.data.coverage import Range

INTERVAL = 60
REPEAT = 25


def random_ranges(n: int, seed: int) -> list[Range]:
    """`n` ranges of 1-20 bars scattered over a grid ~30n bars wide, unsorted, overlapping."""
    rng = random.Random(seed)
    span = 30 * n
    out = []
    for _ in range(n):
        start = rng.randrange(span) * INTERVAL
        out.append(Range(start, start + rng.randrange(20) * INTERVAL))
    return out


def median_ms(fn: Callable[[], object]) -> float:
    samples = []
    for _ in range(REPEAT):
        # CPU time of this process: other jobs on a shared machine do not inflate it
        t0 = time.process_time()
        fn()
        samples.append((time.process_time() - t0) * 1000)
    return min(samples)


def operations(n: int) -> dict[str, Callable[[], object]]:
    a, b = random_ranges(n, 1), random_ranges(n, 2)
    arr_a, arr_b = cov.as_array(a), cov.as_array(b)
    merged_a = cov.merge_array(arr_a, INTERVAL)
    window_end = 30 * n * INTERVAL
    return {
        "merge (unsorted)": lambda: cov.merge_array(arr_a, INTERVAL),
        "missing in window": lambda: cov.missing_array(merged_a, 0, window_end, INTERVAL),
        "intersect": lambda: cov.intersect_array(arr_a, arr_b, INTERVAL),
        "subtract": lambda: cov.subtract_array(arr_a, arr_b, INTERVAL),
        "align to 900-bar shards": lambda: cov.align_array(arr_a, INTERVAL, 900),
        "list API: merge": lambda: cov.merge(a, INTERVAL),
        "list API: subtract": lambda: cov.subtract(a, b, INTERVAL),
    }


def main() -> None:
    sizes = (10_000, 100_000)
    results = {n: {name: median_ms(fn) for name, fn in operations(n).items()} for n in sizes}
    print(f"{'operation':26} {'10k ms':>8} {'100k ms':>9} {'100k/10k':>9}  target")
    worst_ratio = worst_100k = 0.0
    for name in results[sizes[0]]:
        small, large = results[sizes[0]][name], results[sizes[1]][name]
        ratio = large / small
        if name.startswith("list API"):
            print(f"{name:26} {small:8.2f} {large:9.2f} {ratio:9.2f}  (info)")
            continue
        worst_ratio, worst_100k = max(worst_ratio, ratio), max(worst_100k, large)
        ok = "ok" if large <= 100 and ratio <= 13 else "MISSED"
        print(f"{name:26} {small:8.2f} {large:9.2f} {ratio:9.2f}  {ok}")
    print(
        f"worst at 100k: {worst_100k:.2f} ms (target <= 100); "
        f"worst 10x ratio: {worst_ratio:.2f} (target <= 13)"
    )


if __name__ == "__main__":
    main()
