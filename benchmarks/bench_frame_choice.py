"""Measure polars against pyarrow for the work the data provider does on a frame.

Prints per-operation medians (ms) for 100k OHLCV bars and the pyarrow/polars ratio, so the
frame-type decision in docs/benchmarks.md can be re-checked on any machine:
  .venv/bin/python benchmarks/bench_frame_choice.py
"""

from __future__ import annotations

import io
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

N = 100_000
REPEAT = 7
COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


def _rows() -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    rows = [
        (i * 60, rng.random(), rng.random(), rng.random(), rng.random(), rng.random())
        for i in range(N)
    ]
    rng.shuffle(rows)
    rows.extend(rows[:1000])  # duplicates, as a replayed shard would produce
    return rows


def _median_ms(fn: Callable[[], object]) -> float:
    samples = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def _polars_build(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    cols = list(zip(*rows, strict=True))
    return pl.DataFrame(
        {
            name: pl.Series(name, col, dtype=pl.Int64 if name == "ts" else pl.Float64)
            for name, col in zip(COLUMNS, cols, strict=True)
        }
    )


def _arrow_build(rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            name: pa.array(col, type=pa.int64() if name == "ts" else pa.float64())
            for name, col in zip(COLUMNS, cols, strict=True)
        }
    )


def _polars_normalize(df: pl.DataFrame) -> pl.DataFrame:
    out = df.sort("ts").unique(subset=["ts"], keep="last", maintain_order=True)
    return out.with_columns(pl.col(c).fill_nan(None) for c in COLUMNS[1:])


def _arrow_normalize(t: pa.Table) -> pa.Table:
    # keep-last dedupe: stable sort by ts, then keep the final row of each ts run
    t = t.append_column("_row", pa.array(range(t.num_rows), type=pa.int64()))
    t = t.sort_by([("ts", "ascending"), ("_row", "ascending")])
    ts = t.column("ts").to_numpy()
    keep = pa.array([*list(ts[1:] != ts[:-1]), True]) if len(ts) else pa.array([], pa.bool_())
    t = t.filter(keep).drop_columns(["_row"])
    for c in COLUMNS[1:]:
        col = t.column(c)
        t = t.set_column(t.schema.get_field_index(c), c, pc.if_else(pc.is_nan(col), None, col))
    return t


def _polars_parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def _arrow_parquet(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


def main() -> None:
    rows = _rows()
    pdf = _polars_build(rows)
    atb = _arrow_build(rows)
    pnorm = _polars_normalize(pdf)
    anorm = _arrow_normalize(atb)
    assert pnorm.height == anorm.num_rows == N
    ops: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("build from 101k row tuples", lambda: _polars_build(rows), lambda: _arrow_build(rows)),
        (
            "sort+dedupe keep-last+NaN->null",
            lambda: _polars_normalize(pdf),
            lambda: _arrow_normalize(atb),
        ),
        (
            "filter window (ts range)",
            lambda: pnorm.filter(pl.col("ts").is_between(6000, 5_000_000)),
            lambda: anorm.filter(
                pc.and_(pc.greater_equal(anorm["ts"], 6000), pc.less_equal(anorm["ts"], 5_000_000))
            ),
        ),
        (
            "concat 2 halves",
            lambda: pl.concat([pnorm[: N // 2], pnorm[N // 2 :]]),
            lambda: pa.concat_tables([anorm.slice(0, N // 2), anorm.slice(N // 2)]),
        ),
        ("parquet to bytes", lambda: _polars_parquet(pnorm), lambda: _arrow_parquet(anorm)),
    ]
    print(f"{'operation':36} {'polars ms':>10} {'pyarrow ms':>11} {'arrow/polars':>13}")
    total_p = total_a = 0.0
    for name, p_fn, a_fn in ops:
        p_ms, a_ms = _median_ms(p_fn), _median_ms(a_fn)
        total_p += p_ms
        total_a += a_ms
        print(f"{name:36} {p_ms:10.2f} {a_ms:11.2f} {a_ms / p_ms:13.2f}")
    print(f"{'TOTAL':36} {total_p:10.2f} {total_a:11.2f} {total_a / total_p:13.2f}")


if __name__ == "__main__":
    main()
