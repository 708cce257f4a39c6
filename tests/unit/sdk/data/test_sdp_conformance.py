from __future__ import annotations

import polars as pl
import pytest
from seamless.data.bars import BAR_SCHEMA
from seamless.data.conformance import ConformancePipeline
from seamless.errors import ConformancePipelineError
from seamless.testing import _apply_faults as apply_faults
from seamless.testing import synthetic_bars

pytestmark = pytest.mark.unit

BARS = synthetic_bars(0, 60 * 49, node_id="n", interval=60, seed=1)


@pytest.mark.parametrize(
    ("fault", "flags"),
    [
        ("missing_column", {"missing_column"}),
        ("string_prices", {"dtype_cast"}),
        ("duplicate_ts", {"duplicate_ts"}),
        ("non_finite", {"non_finite"}),
        ("off_grid_ts", {"invalid_timestamp"}),
        ("datetime_ts", {"ts_cast", "ts_timezone_normalized"}),
        ("unsorted", set()),
    ],
)
def test_each_fault_is_flagged_and_normalised(fault: str, flags: set[str]) -> None:
    faulty = apply_faults(BARS, frozenset({fault}), 60)
    out, report = ConformancePipeline(partial_ok=True).normalize(faulty, interval=60)
    assert set(report.flags) == flags
    assert out.schema == pl.Schema(BAR_SCHEMA)
    assert out["ts"].is_sorted() and out["ts"].n_unique() == out.height
    assert (out["ts"] % 60 == 0).all()
    floats = out.select(pl.col(pl.Float64))
    assert floats.select(pl.all().is_nan().any()).sum_horizontal().item() == 0


def test_clean_frame_passes_strict_unchanged() -> None:
    out, report = ConformancePipeline.preset("strict-blocking").check(BARS, interval=60)
    assert not report.flagged
    assert out.equals(BARS)


def test_any_flag_blocks_unless_partial_ok() -> None:
    faulty = apply_faults(BARS, frozenset({"duplicate_ts"}), 60)
    with pytest.raises(ConformancePipelineError) as err:
        ConformancePipeline.preset("strict-blocking").check(faulty, interval=60)
    assert err.value.report.flags["duplicate_ts"] == 3  # type: ignore[attr-defined]
    out, report = ConformancePipeline.preset("permissive-dev").check(faulty, interval=60)
    assert report.flags["duplicate_ts"] == 3 and out.height == BARS.height


def test_dedupe_keeps_the_last_row() -> None:
    frame = pl.DataFrame({"ts": [0, 60, 0], "open": [1.0, 2.0, 3.0]})
    out, _ = ConformancePipeline(partial_ok=True, schema={}).normalize(frame, interval=60)
    assert out["ts"].to_list() == [0, 60]
    assert out["open"].to_list() == [3.0, 2.0]


def test_gaps_are_counted() -> None:
    holed = BARS.filter(~pl.col("ts").is_in([120, 600, 660]))
    _, report = ConformancePipeline(partial_ok=True).normalize(holed, interval=60)
    assert report.flags["gap"] == 2


def test_uncastable_values_are_a_dtype_mismatch() -> None:
    frame = BARS.with_columns(pl.col("close").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.col("ts") == 0).then(pl.lit("n/a")).otherwise(pl.col("close")).alias("close")
    )
    out, report = ConformancePipeline(partial_ok=True).normalize(frame, interval=60)
    assert report.flags["dtype_mismatch"] == 1
    assert out["close"].null_count() == 1


def test_strict_preset_uses_its_own_grid() -> None:
    pipeline = ConformancePipeline.preset("strict-blocking")
    assert pipeline.interval_s == 60 and not pipeline.partial_ok
    off_grid = pl.DataFrame({"ts": [0, 30]}).with_columns(
        [pl.lit(1.0).alias(c) for c in ("open", "high", "low", "close", "volume")]
    )
    with pytest.raises(ConformancePipelineError, match="off-grid"):
        pipeline.check(off_grid, interval=30)
