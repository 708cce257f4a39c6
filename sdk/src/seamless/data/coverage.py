"""Coverage algebra on an interval grid.

A bar series with interval ``interval`` lives on the grid ``{k * interval}`` (epoch seconds,
anchored at 0). A `Range` is *inclusive* at both ends: ``Range(0, 120)`` at interval 60 holds
the bars 0, 60 and 120. Two ranges touch (and merge) when ``start <= last.end + interval``,
which is QMTL's rule: adjacent bars leave no gap between them.

Every operation returns sorted, disjoint, non-touching ranges and costs O(n log n): one sort,
then vectorised sweeps. The work happens on ``(n, 2)`` int64 numpy arrays (the ``*_array``
functions, for bulk use: 100k ranges in milliseconds); the list functions taking and giving
`Range` tuples wrap them for everyday use.

The domain is checked at every public entry: ``interval`` (and ``window_bars``) must be
positive integers, every range endpoint and window bound a multiple of ``interval`` with
``start <= end``, all within +-2**61 s. Anything else raises `InvalidRequestError` naming
the argument (e.g. ``b[0]``) and the valid form: an off-grid endpoint has no answer on the
grid, and a silently rounded one gives wrong answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from seamless.errors import InvalidRequestError

RangeArray = npt.NDArray[np.int64]
_FAR = np.int64(1 << 62)  # beyond any epoch-second timestamp
# The largest |value| (and interval) the algebra takes: end + interval stays below _FAR, so
# the complements below never overflow int64.
LIMIT = 1 << 61


def check_interval(interval: object, argument: str = "interval") -> int:
    """`interval` as an int, or `InvalidRequestError` naming `argument`."""
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | np.integer)
        or not 0 < interval <= LIMIT
    ):
        raise InvalidRequestError(argument, interval, "a positive integer (at most 2**61)")
    return int(interval)


def check_point(value: object, interval: int, argument: str) -> int:
    """`value` as an int on the grid of `interval`, or `InvalidRequestError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidRequestError(argument, value, f"an integer multiple of interval={interval}")
    value = int(value)
    if abs(value) > LIMIT:
        raise InvalidRequestError(argument, value, "a value within +-2**61")
    if value % interval:
        lower = value - value % interval
        raise InvalidRequestError(
            argument,
            value,
            f"a multiple of interval={interval} (on the bar grid), e.g. {lower} or "
            f"{lower + interval}",
        )
    return value


def check_array(array: RangeArray, interval: int, argument: str) -> RangeArray:
    """Raise `InvalidRequestError` naming ``argument[i]``, the first range that is not
    ``start <= end`` with both ends on the grid; vectorised, so cheap next to the sort."""
    if len(array) == 0:
        return array
    bad = (
        (array[:, 0] > array[:, 1])
        | (array[:, 0] % interval != 0)
        | (array[:, 1] % interval != 0)
        | (np.abs(array) > LIMIT).any(axis=1)
    )
    if bad.any():
        i = int(np.argmax(bad))
        pair = (int(array[i, 0]), int(array[i, 1]))
        raise InvalidRequestError(
            f"{argument}[{i}]",
            pair,
            f"a range (start, end) with start <= end, both multiples of interval={interval} "
            "within +-2**61",
        )
    return array


def _checked(ranges: object, interval: int, argument: str) -> RangeArray:
    try:
        array = as_array(ranges)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidRequestError(
            argument, type(ranges).__name__, f"an iterable of (start, end) integer pairs ({exc})"
        ) from None
    return check_array(array, interval, argument)


class Range(NamedTuple):
    """Inclusive range of bar timestamps on the grid: ``start <= end``."""

    start: int
    end: int

    def bars(self, interval: int) -> int:
        return (self.end - self.start) // check_interval(interval) + 1

    def contains(self, other: Range) -> bool:
        return self.start <= other.start and other.end <= self.end


def as_array(ranges: Iterable[Range] | Iterable[tuple[int, int]]) -> RangeArray:
    """Ranges as an ``(n, 2)`` int64 array (unsorted, as given)."""
    if isinstance(ranges, np.ndarray):
        if ranges.dtype.kind not in "iu":
            raise ValueError(f"integer array expected, got dtype {ranges.dtype}")
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


def merge_array(array: RangeArray, interval: int) -> RangeArray:
    """Union: sort by start, carry the running end, cut where a start leaves a gap."""
    interval = check_interval(interval)
    return _merge(_checked(array, interval, "array"), interval)


def _merge(array: RangeArray, interval: int, *, sorted_runs: bool = False) -> RangeArray:
    """`merge_array` on checked input. ``sorted_runs``: the input is a few already-sorted
    runs laid end to end (as when two merged arrays are concatenated); timsort then merges
    them in linear time."""
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
    interval = check_interval(interval)
    return _intersect(_checked(a, interval, "a"), _checked(b, interval, "b"), interval)


def _intersect(a: RangeArray, b: RangeArray, interval: int) -> RangeArray:
    holes = np.concatenate(
        (
            _complement_merged(_merge(a, interval), interval),
            _complement_merged(_merge(b, interval), interval),
        )
    )
    return _complement_merged(_merge(holes, interval, sorted_runs=True), interval)


def subtract_array(a: RangeArray, b: RangeArray, interval: int) -> RangeArray:
    """A minus B = not (not A or B)."""
    interval = check_interval(interval)
    return _subtract(_checked(a, interval, "a"), _checked(b, interval, "b"), interval)


def _subtract(a: RangeArray, b: RangeArray, interval: int) -> RangeArray:
    outside = np.concatenate(
        (
            _complement_merged(_merge(a, interval), interval),
            _merge(b, interval),
        )
    )
    return _complement_merged(_merge(outside, interval, sorted_runs=True), interval)


def missing_array(coverage: RangeArray, start: int, end: int, interval: int) -> RangeArray:
    """The ranges of the window ``[start, end]`` that `coverage` does not hold."""
    return _missing(coverage, start, end, interval)


def _missing(coverage: object, start: int, end: int, interval: int) -> RangeArray:
    interval = check_interval(interval)
    start = check_point(start, interval, "start")
    end = check_point(end, interval, "end")
    held = _checked(coverage, interval, "coverage")
    if end < start:
        return _empty()
    return _subtract(np.array([[start, end]], dtype=np.int64), held, interval)


def align_array(array: RangeArray, interval: int, window_bars: int) -> RangeArray:
    width = shard_width(interval, window_bars)
    merged = _merge(_checked(array, interval, "ranges"), interval)
    if len(merged) == 0:
        return _empty()
    first, last = merged[:, 0] // width, merged[:, 1] // width
    counts = last - first + 1
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.unique(np.repeat(first, counts) + offsets)
    return np.column_stack((index * width, index * width + width - interval))


def merge(ranges: Iterable[Range], interval: int) -> list[Range]:
    """Union of `ranges`: sorted, overlapping or adjacent ranges fused."""
    interval = check_interval(interval)
    return to_ranges(_merge(_checked(ranges, interval, "ranges"), interval))


def intersect(a: Iterable[Range], b: Iterable[Range], interval: int) -> list[Range]:
    """Grid points held by both `a` and `b`."""
    interval = check_interval(interval)
    return to_ranges(_intersect(_checked(a, interval, "a"), _checked(b, interval, "b"), interval))


def subtract(a: Iterable[Range], b: Iterable[Range], interval: int) -> list[Range]:
    """Grid points of `a` not held by `b`."""
    interval = check_interval(interval)
    return to_ranges(_subtract(_checked(a, interval, "a"), _checked(b, interval, "b"), interval))


def missing(coverage: Iterable[Range], start: int, end: int, interval: int) -> list[Range]:
    """The ranges of the window ``[start, end]`` that `coverage` does not hold."""
    return to_ranges(_missing(coverage, start, end, interval))


def total_bars(ranges: Iterable[Range], interval: int) -> int:
    interval = check_interval(interval)
    merged = _merge(_checked(ranges, interval, "ranges"), interval)
    return int(((merged[:, 1] - merged[:, 0]) // interval + 1).sum())


def shard_width(interval: int, window_bars: int) -> int:
    interval = check_interval(interval)
    window_bars = check_interval(window_bars, "window_bars")
    if interval * window_bars > LIMIT:
        raise InvalidRequestError(
            "window_bars", window_bars, f"interval * window_bars <= 2**61 (interval={interval})"
        )
    return interval * window_bars


def align_to_shards(ranges: Iterable[Range], interval: int, window_bars: int) -> list[Range]:
    """The shards of the grid ``window_bars * interval`` wide (anchored at 0) that touch
    `ranges`. Two requests overlapping the same shard get the very same shard, so they claim
    the same coordinator key; clipping the shards back to `ranges` gives `ranges` exactly."""
    return to_ranges(align_array(as_array(ranges), interval, window_bars))


def clip(ranges: Iterable[Range], start: int, end: int, interval: int) -> list[Range]:
    """`ranges` restricted to the window ``[start, end]`` (empty when ``end < start``)."""
    interval = check_interval(interval)
    start = check_point(start, interval, "start")
    end = check_point(end, interval, "end")
    held = _checked(ranges, interval, "ranges")
    if end < start:
        return []
    return to_ranges(_intersect(held, np.array([[start, end]], dtype=np.int64), interval))


def on_grid(value: int, interval: int) -> bool:
    return value % check_interval(interval) == 0


def from_timestamps(
    timestamps: Sequence[int] | npt.NDArray[np.int64], interval: int
) -> list[Range]:
    """Coverage of a *sorted, de-duplicated* array of bar timestamps on the grid, in O(n);
    anything else is refused (naming ``timestamps[i]``), never silently mis-covered."""
    interval = check_interval(interval)
    ts = np.asarray(timestamps)
    if ts.size and ts.dtype.kind not in "iu":
        raise InvalidRequestError("timestamps", ts.dtype, "integer epoch seconds")
    ts = ts.astype(np.int64, copy=False).reshape(-1)
    if ts.size == 0:
        return []
    bad = (ts % interval != 0) | (np.abs(ts) > LIMIT)
    bad[1:] |= np.diff(ts) <= 0
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidRequestError(
            f"timestamps[{i}]",
            int(ts[i]),
            f"strictly increasing multiples of interval={interval} within +-2**61",
        )
    breaks = np.flatnonzero(np.diff(ts) > interval)
    starts = np.concatenate(([ts[0]], ts[breaks + 1]))
    ends = np.concatenate((ts[breaks], [ts[-1]]))
    return to_ranges(np.column_stack((starts, ends)))
