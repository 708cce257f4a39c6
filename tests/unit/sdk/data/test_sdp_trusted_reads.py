"""Trusted reads: bars read back from our own store skip normalisation, but a corrupted
store (unsorted, duplicated, off-grid, non-finite or mistyped bars) is still caught; bars
from a fetcher are always fully normalised."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest
from prometheus_client import CollectorRegistry
from seamless.data.conformance import ConformancePipeline
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.storage import MemoryBarStore
from seamless.errors import ConformancePipelineError
from seamless.metrics import SeamlessMetrics
from seamless.testing import synthetic_bars

pytestmark = pytest.mark.unit

IV = 60
BARS = synthetic_bars(0, IV * 99, node_id="n", interval=IV)


def test_clean_stored_bars_pass_untouched_with_their_gaps_counted() -> None:
    pipeline = ConformancePipeline()
    out, report = pipeline.verify_stored(BARS, interval=IV)
    assert out is BARS, "no copy, no re-normalisation"
    assert not report.flags and report.rows_in == report.rows_out == 100
    holey = BARS.filter((pl.col("ts") < IV * 10) | (pl.col("ts") > IV * 20))
    out, report = pipeline.verify_stored(holey, interval=IV)
    assert out is holey and dict(report.flags) == {"gap": 1}
    # the same report normalisation would give
    assert pipeline.normalize(holey, interval=IV)[1].flags == report.flags
    assert pipeline.verify_stored(BARS.clear(), interval=IV)[1].flags == {}


def test_a_null_value_is_not_a_corruption_on_either_check_path() -> None:
    """Frames without nulls are checked on numpy views, frames with a null on polars: the
    answers agree (a null value is ILP's null, a stored bar may hold one)."""
    pipeline = ConformancePipeline()
    holey = BARS.filter((pl.col("ts") < IV * 10) | (pl.col("ts") > IV * 20))
    with_null = holey.with_columns(
        pl.when(pl.col("ts") == IV).then(None).otherwise(pl.col("volume")).alias("volume")
    )
    for frame in (holey, with_null):
        out, report = pipeline.verify_stored(frame, interval=IV)
        assert out is frame and dict(report.flags) == {"gap": 1}


CORRUPTIONS: dict[str, tuple[Callable[[pl.DataFrame], pl.DataFrame], str]] = {
    "unsorted": (lambda f: f.reverse(), ""),  # normalisation only re-sorts: no flag
    "duplicate": (lambda f: pl.concat([f, f.slice(5, 1)]), "duplicate_ts"),
    "off_grid": (
        lambda f: f.with_columns(pl.col("ts") + (pl.col("ts") == IV * 3)),
        "invalid_timestamp",
    ),
    "negative": (lambda f: f.with_columns(pl.col("ts") - IV * 5), "invalid_timestamp"),
    "null_ts": (
        lambda f: f.with_columns(
            pl.when(pl.col("ts") == 0).then(None).otherwise(pl.col("ts")).alias("ts")
        ),
        "invalid_timestamp",
    ),
    "nan": (
        lambda f: f.with_columns(
            pl.when(pl.col("ts") == IV).then(float("nan")).otherwise(pl.col("open")).alias("open")
        ),
        "non_finite",
    ),
    "inf": (
        lambda f: f.with_columns(
            pl.when(pl.col("ts") == IV).then(float("inf")).otherwise(pl.col("low")).alias("low")
        ),
        "non_finite",
    ),
    "dtype": (lambda f: f.with_columns(pl.col("volume").cast(pl.Float32)), "dtype_cast"),
    "missing_column": (lambda f: f.drop("close"), "missing_column"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupted_store_is_caught_and_fully_normalised(name: str) -> None:
    corrupt, flag = CORRUPTIONS[name]
    frame = corrupt(BARS)
    pipeline = ConformancePipeline()
    out, report = pipeline.verify_stored(frame, interval=IV)
    expected_out, expected = pipeline.normalize(frame, interval=IV)
    assert out.equals(expected_out) and report.flags == expected.flags
    if name == "unsorted":
        assert out.equals(BARS) and not report.flags  # only re-sorted
    else:
        assert report.flags[flag] > 0


async def test_the_provider_blocks_a_corrupted_store_and_serves_a_clean_one() -> None:
    store = MemoryBarStore()
    await store.write("n", IV, BARS)
    provider = SeamlessDataProvider(
        store=store, strategy=Strategy.FAIL_FAST, metrics=SeamlessMetrics(CollectorRegistry())
    )
    result = await provider.fetch(0, IV * 99, node_id="n", interval=IV)
    assert result.frame.equals(BARS) and not result.metadata.conformance.flags
    # corrupt what is stored behind the store's back: a NaN the write path never lets in
    key = ("n", IV)
    store._series[key] = store._series[key].with_columns(
        pl.when(pl.col("ts") == IV * 4).then(float("nan")).otherwise(pl.col("close")).alias("close")
    )
    provider.invalidate_cache()
    with pytest.raises(ConformancePipelineError) as err:
        await provider.fetch(0, IV * 99, node_id="n", interval=IV)
    assert "NaN/inf" in str(err.value)
