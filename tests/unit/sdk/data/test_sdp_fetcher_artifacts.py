"""The synthetic fetcher's determinism and the canonical fingerprint's invariances."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import polars as pl
import pytest
from seamless.data.artifacts import fingerprint
from seamless.data.coverage import Range
from seamless.errors import FetchFailed
from seamless.testing import FileCallLog, SyntheticFetcher, synthetic_bars

pytestmark = pytest.mark.unit


async def test_values_do_not_depend_on_the_shard_that_asks() -> None:
    fetcher = SyntheticFetcher(seed=9)
    whole = await fetcher.fetch(0, 60 * 199, node_id="n", interval=60)
    left = await fetcher.fetch(0, 60 * 99, node_id="n", interval=60)
    right = await fetcher.fetch(60 * 100, 60 * 199, node_id="n", interval=60)
    assert pl.concat([left, right]).equals(whole)
    other_seed = await SyntheticFetcher(seed=10).fetch(0, 60 * 199, node_id="n", interval=60)
    assert not other_seed.equals(whole)
    assert (whole["high"] >= whole["low"]).all()


async def test_errors_are_deterministic_and_retries_can_succeed() -> None:
    first, second = (
        SyntheticFetcher(seed=4, error_rate=0.5),
        SyntheticFetcher(seed=4, error_rate=0.5),
    )
    seq = []
    for fetcher in (first, second):
        run = []
        for _ in range(12):
            try:
                await fetcher.fetch(0, 600, node_id="n", interval=60)
                run.append(True)
            except FetchFailed:
                run.append(False)
        seq.append(run)
    assert seq[0] == seq[1]
    assert True in seq[0] and False in seq[0]
    assert first.calls()[("n", 60, 0, 600)] == 12


async def test_gaps_and_horizon_drop_bars() -> None:
    fetcher = SyntheticFetcher(gaps=[Range(120, 240)], horizon=lambda: 600.0)
    frame = await fetcher.fetch(0, 6000, node_id="n", interval=60)
    ts = frame["ts"].to_list()
    assert 120 not in ts and 240 not in ts and 60 in ts and 300 in ts
    assert max(ts) == 540  # the bar at 540 closes at 600 (now); the one at 600 is still open


def test_unknown_schema_fault_is_rejected() -> None:
    with pytest.raises(ValueError, match="schema_faults"):
        SyntheticFetcher(schema_faults=frozenset({"wrong"}))


def _record_calls(path: str, worker: int) -> None:
    log = FileCallLog(Path(path))
    for shard in range(50):
        log.record("n", 60, shard * 100 + worker, shard * 100 + worker)


def test_file_call_log_counts_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "calls.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_calls, args=(str(path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    counts = FileCallLog(path).counts()
    assert len(counts) == 150 and set(counts.values()) == {1}


FRAME = synthetic_bars(0, 60 * 99, node_id="n", interval=60)
META = {
    "node_id": "n",
    "interval": 60,
    "coverage_bounds": [Range(0, 5940)],
    "conformance_version": "1",
}


def test_fingerprint_is_canonical() -> None:
    fp = fingerprint(FRAME, **META)  # type: ignore[arg-type]
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 64
    reordered = FRAME.select(["volume", "close", "ts", "open", "low", "high"]).reverse()
    assert fingerprint(reordered, **META) == fp  # type: ignore[arg-type]


def test_fingerprint_treats_nan_as_null_and_sees_every_change() -> None:
    with_nan = FRAME.with_columns(
        pl.when(pl.col("ts") == 0).then(float("nan")).otherwise(pl.col("open")).alias("open")
    )
    with_null = FRAME.with_columns(
        pl.when(pl.col("ts") == 0).then(None).otherwise(pl.col("open")).alias("open")
    )
    base = fingerprint(FRAME, **META)  # type: ignore[arg-type]
    assert fingerprint(with_nan, **META) == fingerprint(with_null, **META)  # type: ignore[arg-type]
    assert fingerprint(with_nan, **META) != base  # type: ignore[arg-type]
    assert fingerprint(FRAME, **{**META, "node_id": "m"}) != base  # type: ignore[arg-type]
    assert fingerprint(FRAME, **{**META, "conformance_version": "2"}) != base  # type: ignore[arg-type]
    nudged = FRAME.with_columns(pl.col("close") + (pl.col("ts") == 5940).cast(pl.Float64) * 1e-9)
    assert fingerprint(nudged, **META) != base  # type: ignore[arg-type]
