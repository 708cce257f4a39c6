"""Coverage algebra on an interval grid.

A bar series with interval ``interval`` lives on the grid ``{k * interval}`` (epoch seconds,
anchored at 0). A `Range` is *inclusive* at both ends: ``Range(0, 120)`` at interval 60 holds
the bars 0, 60 and 120. Two ranges touch (and merge) when ``start <= last.end + interval``,
which is QMTL's rule: adjacent bars leave no gap between them.

Every operation returns sorted, disjoint, non-touching ranges and costs O(n log n): one sort,
then vectorised sweeps. The work happens on ``(n, 2)`` int64 numpy arrays (the ``*_array``
functions, for bulk use: 100k ranges in milliseconds); the list functions taking and giving
`Range` tuples wrap them for everyday use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

RangeArray = npt.NDArray[np.int64]
_FAR = np.int64(1 << 62)  # beyond any epoch-second timestamp


class Range(NamedTuple):
    """Inclusive range of bar timestamps on the grid: ``start <= end``."""

    start: int
    end: int

    def bars(self, interval: int) -> int:
        return (self.end - self.start) // interval + 1

    def contains(self, other: Range) -> bool:
        return self.start <= other.start and other.end <= self.end


def as_array(ranges: Iterable[Range] | Iterable[tuple[int, int]]) -> RangeArray:
    """Ranges as an ``(n, 2)`` int64 array (unsorted, as given)."""
    if isinstance(ranges, np.ndarray):
        return ranges.astype(np.int64, copy=False).reshape(-1, 2)
    flat = np.fromiter(chain.from_iterable(ranges), dtype=np.int64)
    return flat.reshape(-1, 2)


def to_ranges(array: RangeArray) -> list[Range]:
    new = tuple.__new__
    return [
        new(Range, pair) for pair in zip(array[:, 0].tolist(), array[:, 1].tolist(), strict=True)
    ]


def _empty() -> RangeArray:
    return np.empty((0, 2), dtype=np.int64)


def merge_array(array: RangeArray, interval: int, *, sorted_runs: bool = False) -> RangeArray:
    """Union: sort by start, carry the running end, cut where a start leaves a gap.

    ``sorted_runs``: the input is a few already-sorted runs laid end to end (as when two
    merged arrays are concatenated); timsort then merges them in linear time."""
    if len(array) == 0:
        return _empty()
    # ties need no order (the running end decides), so any sort will do
    order = np.argsort(array[:, 0], kind="stable" if sorted_runs else "quicksort")
    starts, ends = array[order, 0], array[order, 1]
    running_end = np.maximum.accumulate(ends)
    cut = np.flatnonzero(starts[1:] > running_end[:-1] + interval)
    first = np.concatenate(([0], cut + 1))
    last = np.concatenate((cut, [len(starts) - 1]))
    return np.column_stack((starts[first], running_end[last]))


def _complement_merged(array: RangeArray, interval: int) -> RangeArray:
    """The grid points (within +-2**62) a merged array does not hold; merged again."""
    if len(array) == 0:
        return np.array([[-_FAR, _FAR]], dtype=np.int64)
    starts = np.concatenate(([-_FAR], array[:, 1] + interval))
    ends = np.concatenate((array[:, 0] - interval, [_FAR]))
    keep = starts <= ends
    return np.column_stack((starts[keep], ends[keep]))


def intersect_array(a: RangeArray, b: RangeArray, interval: int) -> RangeArray:
    """A and B = not (not A or not B): three sorts and linear sweeps."""
    holes = np.concatenate(
        (
            _complement_merged(merge_array(a, interval), interval),
            _complement_merged(merge_array(b, interval), interval),
        )
    )
    return _complement_merged(merge_array(holes, interval, sorted_runs=True), interval)


def subtract_array(a: RangeArray, b: RangeArray, interval: int) -> RangeArray:
    """A minus B = not (not A or B)."""
    outside = np.concatenate(
        (
            _complement_merged(merge_array(a, interval), interval),
            merge_array(b, interval),
        )
    )
    return _complement_merged(merge_array(outside, interval, sorted_runs=True), interval)


def missing_array(coverage: RangeArray, start: int, end: int, interval: int) -> RangeArray:
    if end < start:
        return _empty()
    return subtract_array(np.array([[start, end]], dtype=np.int64), coverage, interval)


def align_array(array: RangeArray, interval: int, window_bars: int) -> RangeArray:
    width = shard_width(interval, window_bars)
    merged = merge_array(array, interval)
    if len(merged) == 0:
        return _empty()
    first, last = merged[:, 0] // width, merged[:, 1] // width
    counts = last - first + 1
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.unique(np.repeat(first, counts) + offsets)
    return np.column_stack((index * width, index * width + width - interval))


def merge(ranges: Iterable[Range], interval: int) -> list[Range]:
    """Union of `ranges`: sorted, overlapping or adjacent ranges fused."""
    return to_ranges(merge_array(as_array(ranges), interval))


def intersect(a: Iterable[Range], b: Iterable[Range], interval: int) -> list[Range]:
    """Grid points held by both `a` and `b`."""
    return to_ranges(intersect_array(as_array(a), as_array(b), interval))


def subtract(a: Iterable[Range], b: Iterable[Range], interval: int) -> list[Range]:
    """Grid points of `a` not held by `b`."""
    return to_ranges(subtract_array(as_array(a), as_array(b), interval))


def missing(coverage: Iterable[Range], start: int, end: int, interval: int) -> list[Range]:
    """The ranges of the window ``[start, end]`` that `coverage` does not hold."""
    return to_ranges(missing_array(as_array(coverage), start, end, interval))


def total_bars(ranges: Iterable[Range], interval: int) -> int:
    merged = merge_array(as_array(ranges), interval)
    return int(((merged[:, 1] - merged[:, 0]) // interval + 1).sum())


def shard_width(interval: int, window_bars: int) -> int:
    return interval * window_bars


def align_to_shards(ranges: Iterable[Range], interval: int, window_bars: int) -> list[Range]:
    """The shards of the grid ``window_bars * interval`` wide (anchored at 0) that touch
    `ranges`. Two requests overlapping the same shard get the very same shard, so they claim
    the same coordinator key; clipping the shards back to `ranges` gives `ranges` exactly."""
    return to_ranges(align_array(as_array(ranges), interval, window_bars))


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
    return to_ranges(np.column_stack((starts, ends)))
