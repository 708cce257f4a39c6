"""Coverage algebra domain: off-grid endpoints, reversed ranges and non-positive intervals
are refused at every public entry, naming the argument; on-grid input (negative stamps
included) still matches the brute-force model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from seamless.data import coverage as cov
from seamless.data.coverage import Range
from seamless.errors import InvalidRequestError

pytestmark = pytest.mark.unit

IV = 5


def on_grid_ranges(max_size: int = 8) -> st.SearchStrategy[list[Range]]:
    pair = st.tuples(st.integers(-40, 40), st.integers(0, 10)).map(
        lambda p: Range(p[0] * IV, (p[0] + p[1]) * IV)
    )
    return st.lists(pair, max_size=max_size)


def off_grid_range() -> st.SearchStrategy[Range]:
    """A range with at least one endpoint off the grid, or start > end."""
    off = st.integers(-200, 200).filter(lambda v: v % IV != 0)
    on = st.integers(-40, 40).map(lambda k: k * IV)
    return st.one_of(
        st.tuples(off, st.integers(-200, 200)).map(lambda p: Range(p[0], max(p))),
        st.tuples(on, off).map(lambda p: Range(min(p), max(p))),
        st.tuples(on, st.integers(1, 10)).map(lambda p: Range(p[0], p[0] - p[1] * IV)),
    )


def points(rs: list[Range]) -> set[int]:
    return {t for r in rs for t in range(r.start, r.end + 1, IV)}


# every public function taking ranges, with the name its error must give
RANGE_ARGS: dict[str, Callable[[list[Range]], Any]] = {
    "merge:ranges": lambda rs: cov.merge(rs, IV),
    "merge_array:array": lambda rs: cov.merge_array(cov.as_array(rs), IV),
    "intersect:a": lambda rs: cov.intersect(rs, [Range(0, 50)], IV),
    "intersect:b": lambda rs: cov.intersect([Range(0, 50)], rs, IV),
    "intersect_array:b": lambda rs: cov.intersect_array(
        cov.as_array([Range(0, 50)]), cov.as_array(rs), IV
    ),
    "subtract:a": lambda rs: cov.subtract(rs, [Range(0, 50)], IV),
    "subtract:b": lambda rs: cov.subtract([Range(0, 50)], rs, IV),
    "subtract_array:a": lambda rs: cov.subtract_array(
        cov.as_array(rs), cov.as_array([Range(0, 50)]), IV
    ),
    "missing:coverage": lambda rs: cov.missing(rs, 0, 100, IV),
    "missing_array:coverage": lambda rs: cov.missing_array(cov.as_array(rs), 0, 100, IV),
    "clip:ranges": lambda rs: cov.clip(rs, 0, 100, IV),
    "total_bars:ranges": lambda rs: cov.total_bars(rs, IV),
    "align_to_shards:ranges": lambda rs: cov.align_to_shards(rs, IV, 4),
    "align_array:ranges": lambda rs: cov.align_array(cov.as_array(rs), IV, 4),
}


@pytest.mark.parametrize("entry", sorted(RANGE_ARGS))
@given(good=on_grid_ranges(), bad=off_grid_range(), data=st.data())
def test_an_off_grid_or_reversed_range_is_refused_naming_its_position(
    entry: str, good: list[Range], bad: Range, data: st.DataObject
) -> None:
    call, argument = RANGE_ARGS[entry], entry.split(":")[1]
    call(good)  # the on-grid input alone is accepted
    at = data.draw(st.integers(0, len(good)))
    with pytest.raises(InvalidRequestError) as err:
        call([*good[:at], bad, *good[at:]])
    assert err.value.argument == f"{argument}[{at}]"
    assert err.value.value == tuple(bad)
    assert f"interval={IV}" in str(err.value)


INTERVAL_ARGS: dict[str, Callable[[Any], Any]] = {
    "merge": lambda iv: cov.merge([Range(0, 10)], iv),
    "merge_array": lambda iv: cov.merge_array(cov.as_array([Range(0, 10)]), iv),
    "intersect": lambda iv: cov.intersect([Range(0, 10)], [Range(0, 10)], iv),
    "subtract": lambda iv: cov.subtract([Range(0, 10)], [Range(0, 10)], iv),
    "missing": lambda iv: cov.missing([], 0, 10, iv),
    "clip": lambda iv: cov.clip([], 0, 10, iv),
    "total_bars": lambda iv: cov.total_bars([], iv),
    "shard_width": lambda iv: cov.shard_width(iv, 10),
    "align_to_shards": lambda iv: cov.align_to_shards([], iv, 10),
    "on_grid": lambda iv: cov.on_grid(10, iv),
    "from_timestamps": lambda iv: cov.from_timestamps([0, 10], iv),
    "Range.bars": lambda iv: Range(0, 10).bars(iv),
}


@pytest.mark.parametrize("entry", sorted(INTERVAL_ARGS))
@given(
    interval=st.one_of(
        st.integers(max_value=0),
        st.floats(allow_nan=True),
        st.sampled_from([True, False, "60", None]),
    )
)
def test_a_non_positive_or_non_integer_interval_is_refused(entry: str, interval: Any) -> None:
    with pytest.raises(InvalidRequestError) as err:
        INTERVAL_ARGS[entry](interval)
    assert err.value.argument == "interval"
    assert "positive integer" in str(err.value)


@pytest.mark.parametrize("call", [cov.missing, cov.clip], ids=["missing", "clip"])
@given(k=st.integers(-50, 50), off=st.integers(1, IV - 1), which=st.sampled_from(["start", "end"]))
def test_an_off_grid_window_bound_is_refused_naming_it(
    call: Callable[..., Any], k: int, off: int, which: str
) -> None:
    bounds = {"start": 0, "end": 100}
    bounds[which] = k * IV + off
    with pytest.raises(InvalidRequestError) as err:
        call([Range(0, 50)], bounds["start"], bounds["end"], IV)
    assert err.value.argument == which
    assert f"a multiple of interval={IV}" in str(err.value)


@given(st.integers(max_value=0))
def test_window_bars_must_be_positive(window_bars: int) -> None:
    with pytest.raises(InvalidRequestError) as err:
        cov.align_to_shards([Range(0, 10)], IV, window_bars)
    assert err.value.argument == "window_bars"


@given(ts=st.lists(st.integers(-40, 40), min_size=2, max_size=20, unique=True), data=st.data())
def test_from_timestamps_refuses_unsorted_duplicated_or_off_grid_stamps(
    ts: list[int], data: st.DataObject
) -> None:
    stamps = sorted(t * IV for t in ts)
    assert points(cov.from_timestamps(stamps, IV)) == set(stamps)
    at = data.draw(st.integers(1, len(stamps) - 1))
    broken = list(stamps)
    broken[at] = data.draw(
        st.one_of(
            st.just(stamps[at - 1]),  # duplicate
            st.integers(-1000, stamps[at - 1]).map(lambda v: v - v % IV),  # goes back
            st.just(stamps[at] + 1),  # off the grid
        )
    )
    with pytest.raises(InvalidRequestError) as err:
        cov.from_timestamps(np.array(broken), IV)
    assert err.value.argument == f"timestamps[{at}]"


def test_the_reported_wrong_answer_is_now_refused() -> None:
    # [(0, 20)] minus (3, 10) at interval 5 used to give [(15, 20)], dropping bars 0 and 5
    with pytest.raises(InvalidRequestError) as err:
        cov.subtract([Range(0, 20)], [Range(3, 10)], 5)
    assert err.value.argument == "b[0]"
    assert "invalid b[0]=(3, 10)" in str(err.value)
    assert cov.subtract([Range(0, 20)], [Range(5, 10)], 5) == [Range(0, 0), Range(15, 20)]


def test_non_integer_ranges_are_refused() -> None:
    with pytest.raises(InvalidRequestError) as err:
        cov.merge_array(np.array([[0.0, 5.5]]), IV)  # type: ignore[arg-type]
    assert err.value.argument == "array"
    with pytest.raises(InvalidRequestError) as err:
        cov.merge([("a", "b")], IV)  # type: ignore[list-item]
    assert err.value.argument == "ranges"


@given(on_grid_ranges(), on_grid_ranges())
def test_negative_on_grid_stamps_follow_set_algebra(a: list[Range], b: list[Range]) -> None:
    assert points(cov.intersect(a, b, IV)) == points(a) & points(b)
    assert points(cov.subtract(a, b, IV)) == points(a) - points(b)
    assert points(cov.merge(a + b, IV)) == points(a) | points(b)
    assert cov.total_bars(a, IV) == len(points(a))
