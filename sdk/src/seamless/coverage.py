"""Coverage algebra on an interval grid.

A bar series with interval ``interval`` lives on the grid ``{k * interval}`` (epoch seconds,
anchored at 0). A `Range` is *inclusive* at both ends: ``Range(0, 120)`` at interval 60 holds
the bars 0, 60 and 120. Two ranges touch (and merge) when ``start <= last.end + interval``,
which is QMTL's rule: adjacent bars leave no gap between them.

Every function takes lists in any order, returns sorted, disjoint, non-touching ranges, and
runs in O(n log n) (one sort, then linear sweeps). Ranges are plain tuples so 100k of them
sort and compare at C speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class Range(NamedTuple):
    """Inclusive range of bar timestamps on the grid: ``start <= end``."""

    start: int
    end: int

    def bars(self, interval: int) -> int:
        return (self.end - self.start) // interval + 1

    def contains(self, other: Range) -> bool:
        return self.start <= other.start and other.end <= self.end


def merge(ranges: Iterable[Range], interval: int) -> list[Range]:
    """Union of `ranges`: sorted, overlapping or adjacent ranges fused."""
    ordered = sorted(ranges)
    if not ordered:
        return []
    out: list[Range] = []
    cur_start, cur_end = ordered[0]
    for start, end in ordered[1:]:
        if start <= cur_end + interval:
            if end > cur_end:
                cur_end = end
        else:
            out.append(Range(cur_start, cur_end))
            cur_start, cur_end = start, end
    out.append(Range(cur_start, cur_end))
    return out


def intersect(a: Iterable[Range], b: Iterable[Range], interval: int) -> list[Range]:
    """Grid points held by both `a` and `b`."""
    left, right = merge(a, interval), merge(b, interval)
    out: list[Range] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start <= end:
            out.append(Range(start, end))
        if left[i].end < right[j].end:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Iterable[Range], b: Iterable[Range], interval: int) -> list[Range]:
    """Grid points of `a` not held by `b`."""
    left, right = merge(a, interval), merge(b, interval)
    out: list[Range] = []
    j = 0
    for start, end in left:
        cursor = start
        # skip holes that end before this range begins
        while j < len(right) and right[j].end < cursor:
            j += 1
        k = j
        while k < len(right) and right[k].start <= end:
            hole_start, hole_end = right[k]
            if hole_start > cursor:
                out.append(Range(cursor, hole_start - interval))
            cursor = max(cursor, hole_end + interval)
            if cursor > end:
                break
            k += 1
        if cursor <= end:
            out.append(Range(cursor, end))
    return out


def missing(coverage: Iterable[Range], start: int, end: int, interval: int) -> list[Range]:
    """The ranges of the window ``[start, end]`` that `coverage` does not hold."""
    if end < start:
        return []
    return subtract([Range(start, end)], coverage, interval)


def total_bars(ranges: Iterable[Range], interval: int) -> int:
    return sum(r.bars(interval) for r in merge(ranges, interval))


def shard_width(interval: int, window_bars: int) -> int:
    return interval * window_bars


def align_to_shards(ranges: Iterable[Range], interval: int, window_bars: int) -> list[Range]:
    """The shards of the grid ``window_bars * interval`` wide (anchored at 0) that touch
    `ranges`. Two requests overlapping the same shard get the very same shard, so they claim
    the same coordinator key; clipping the shards back to `ranges` gives `ranges` exactly."""
    width = shard_width(interval, window_bars)
    shards: list[Range] = []
    last_index: int | None = None
    for start, end in merge(ranges, interval):
        first = start // width
        if last_index is not None and first <= last_index:
            first = last_index + 1
        for index in range(first, end // width + 1):
            shards.append(Range(index * width, index * width + width - interval))
        last_index = max(end // width, last_index if last_index is not None else -1)
    return shards


def clip(ranges: Iterable[Range], start: int, end: int, interval: int) -> list[Range]:
    """`ranges` restricted to the window ``[start, end]``."""
    return intersect(ranges, [Range(start, end)], interval)


def on_grid(value: int, interval: int) -> bool:
    return value % interval == 0


def from_timestamps(
    timestamps: Sequence[int] | npt.NDArray[np.int64], interval: int
) -> list[Range]:
    """Coverage of a *sorted, de-duplicated* array of bar timestamps, in O(n)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(ts) > interval)
    starts = np.concatenate(([ts[0]], ts[breaks + 1]))
    ends = np.concatenate((ts[breaks], [ts[-1]]))
    return [Range(int(s), int(e)) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
