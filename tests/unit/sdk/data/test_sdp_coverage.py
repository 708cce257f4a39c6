"""Coverage algebra: hypothesis properties against a brute-force model on grid points."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seamless.data import coverage as cov
from seamless.data.coverage import Range

pytestmark = pytest.mark.unit

INTERVAL = 60


@st.composite
def ranges(draw: st.DrawFn, max_size: int = 12) -> list[Range]:
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        start = draw(st.integers(0, 200)) * INTERVAL
        length = draw(st.integers(0, 30)) * INTERVAL
        out.append(Range(start, start + length))
    return out


def points(rs: list[Range]) -> set[int]:
    return {t for r in rs for t in range(r.start, r.end + 1, INTERVAL)}


def assert_canonical(rs: list[Range]) -> None:
    """Sorted, each non-empty, disjoint and not touching (a gap of at least one bar)."""
    for r in rs:
        assert r.start <= r.end
        assert r.start % INTERVAL == 0 and r.end % INTERVAL == 0
    for a, b in itertools.pairwise(rs):
        assert a.end + INTERVAL < b.start


@given(ranges())
def test_merge_is_order_independent_and_lossless(rs: list[Range]) -> None:
    merged = cov.merge(rs, INTERVAL)
    shuffled = list(rs)
    random.Random(len(rs)).shuffle(shuffled)
    assert cov.merge(shuffled, INTERVAL) == merged
    assert cov.merge(list(reversed(rs)), INTERVAL) == merged
    assert points(merged) == points(rs)
    assert_canonical(merged)
    assert cov.merge(merged, INTERVAL) == merged  # idempotent


@given(ranges(), st.integers(0, 250), st.integers(0, 60))
def test_missing_union_coverage_is_the_window_and_disjoint(
    rs: list[Range], first: int, length: int
) -> None:
    start, end = first * INTERVAL, (first + length) * INTERVAL
    window = points([Range(start, end)])
    gaps = cov.missing(rs, start, end, INTERVAL)
    held = cov.clip(rs, start, end, INTERVAL)
    assert points(gaps) | points(held) == window
    assert not points(gaps) & points(held)
    assert_canonical(gaps)
    assert_canonical(held)


@given(ranges(), ranges())
def test_intersect_and_subtract_match_set_algebra(a: list[Range], b: list[Range]) -> None:
    inter = cov.intersect(a, b, INTERVAL)
    diff = cov.subtract(a, b, INTERVAL)
    assert points(inter) == points(a) & points(b)
    assert points(diff) == points(a) - points(b)
    assert_canonical(inter)
    assert_canonical(diff)
    assert cov.intersect(a, b, INTERVAL) == cov.intersect(b, a, INTERVAL)


@given(ranges(), st.integers(1, 40))
def test_alignment_covers_exactly_the_requested_ranges(rs: list[Range], window_bars: int) -> None:
    shards = cov.align_to_shards(rs, INTERVAL, window_bars)
    width = window_bars * INTERVAL
    for shard in shards:
        assert shard.start % width == 0
        assert shard.end == shard.start + width - INTERVAL
        assert points([shard]) & points(rs), "every shard touches the request"
    assert len({s.start for s in shards}) == len(shards), "no shard twice"
    assert shards == sorted(shards)
    # the shards hold the request, and clipped to it they give back exactly the request
    assert points(rs) <= points(shards)
    assert points(cov.intersect(shards, rs, INTERVAL)) == points(rs)


@given(ranges(), ranges(), st.integers(1, 20))
def test_overlapping_requests_name_the_same_shards(
    a: list[Range], b: list[Range], window_bars: int
) -> None:
    sa = set(cov.align_to_shards(a, INTERVAL, window_bars))
    sb = set(cov.align_to_shards(b, INTERVAL, window_bars))
    for t in points(a) & points(b):
        assert any(s.start <= t <= s.end for s in sa & sb)


def test_merge_fuses_adjacent_bars_but_not_a_one_bar_gap() -> None:
    assert cov.merge([Range(0, 60), Range(120, 180)], 60) == [Range(0, 180)]
    assert cov.merge([Range(0, 60), Range(180, 240)], 60) == [Range(0, 60), Range(180, 240)]


def test_missing_walks_the_window() -> None:
    held = [Range(60, 120), Range(300, 360)]
    assert cov.missing(held, 0, 480, 60) == [Range(0, 0), Range(180, 240), Range(420, 480)]
    assert cov.missing([], 0, 0, 60) == [Range(0, 0)]
    assert cov.missing(held, 60, 120, 60) == []


def test_from_timestamps_splits_at_holes() -> None:
    assert cov.from_timestamps([0, 60, 120, 300, 360, 600], 60) == [
        Range(0, 120),
        Range(300, 360),
        Range(600, 600),
    ]
    assert cov.from_timestamps([], 60) == []


def test_shard_grid_is_anchored_at_zero() -> None:
    assert cov.align_to_shards([Range(5400, 5460)], 60, 90) == [Range(5400, 10740)]
    assert cov.align_to_shards([Range(5340, 5400)], 60, 90) == [
        Range(0, 5340),
        Range(5400, 10740),
    ]
