"""SDP fetch of 100k stored bars against a raw psycopg query into the same frame type.

Starts a real QuestDB (lab.servers), stores 100k one-minute bars through the SDK's QuestDB
store, then times, interleaved in one run:
  raw      - one psycopg 3 binary query of the same rows, built into a polars frame;
  sdp      - SeamlessDataProvider.fetch (cache cleared each time): storage read, coverage,
             conformance normalisation, SLA timing, metrics;
  sdp+fp   - the same plus the canonical sha256 fingerprint of the frame.
Target (issue 5): sdp / raw <= 1.3.
  .venv/bin/python benchmarks/bench_provider.py [--bars 100000] [--runs 9]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import polars as pl
import psycopg
from prometheus_client import CollectorRegistry
from seamless.fetcher import synthetic_bars
from seamless.logging import configure_logging
from seamless.metrics import SeamlessMetrics
from seamless.provider import SeamlessDataProvider, Strategy
from seamless.storage import QuestDBBarStore

from lab.servers import QuestDBServer

IV = 60
SCHEMA = {
    "ts": pl.Int64,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}


async def raw_fetch(conn: psycopg.AsyncConnection[Any], table: str, end: int) -> pl.DataFrame:
    cur = conn.cursor(binary=True)
    await cur.execute(
        f"SELECT cast(ts AS LONG) / 1000000, open, high, low, close, volume FROM {table} "
        "WHERE node_id = %s AND bar_interval = %s "
        "AND ts BETWEEN cast(%s AS TIMESTAMP) AND cast(%s AS TIMESTAMP)",
        ("bench", IV, 0, end * 1_000_000),
    )
    rows = await cur.fetchall()
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


async def run(bars: int, runs: int) -> None:
    configure_logging("WARNING")
    with QuestDBServer() as qdb:
        store = QuestDBBarStore(qdb.pg_dsn, qdb.ilp_http_conf, table_prefix="seamless_bench_")
        end = IV * (bars - 1)
        t0 = time.perf_counter()
        await store.write("bench", IV, synthetic_bars(0, end, node_id="bench", interval=IV))
        print(f"stored {bars} bars in {time.perf_counter() - t0:.2f} s (ILP + WAL apply)")
        provider = SeamlessDataProvider(
            store=store, strategy=Strategy.FAIL_FAST, metrics=SeamlessMetrics(CollectorRegistry())
        )
        conn = await psycopg.AsyncConnection.connect(qdb.pg_dsn, autocommit=True)
        timings: dict[str, list[float]] = {"raw": [], "sdp": [], "sdp+fp": []}

        async def sdp(with_fp: bool) -> pl.DataFrame:
            provider.invalidate_cache()
            result = await provider.fetch(0, end, node_id="bench", interval=IV)
            if with_fp:
                assert result.fingerprint.startswith("sha256:")
            return result.frame

        jobs = {
            "raw": lambda: raw_fetch(conn, store.table, end),
            "sdp": lambda: sdp(False),
            "sdp+fp": lambda: sdp(True),
        }
        for _ in range(2):  # warm-up: connections, table metadata, QuestDB's page cache
            frames = [await job() for job in jobs.values()]
        assert all(f.height == bars for f in frames) and frames[0].equals(frames[1])
        for _ in range(runs):
            for name, job in jobs.items():
                t0 = time.perf_counter()
                await job()
                timings[name].append((time.perf_counter() - t0) * 1000)
        await conn.close()
        await store.aclose()
    med = {name: statistics.median(v) for name, v in timings.items()}
    print(f"{'path':8} {'median ms':>10} {'min ms':>8} {'ratio to raw':>13}")
    for name, values in timings.items():
        print(f"{name:8} {med[name]:10.1f} {min(values):8.1f} {med[name] / med['raw']:13.2f}")
    verdict = "ok" if med["sdp"] / med["raw"] <= 1.3 else "MISSED"
    print(
        f"sdp/raw = {med['sdp'] / med['raw']:.2f} (target <= 1.3: {verdict}); "
        f"with fingerprint {med['sdp+fp'] / med['raw']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(run(args.bars, args.runs))


if __name__ == "__main__":
    main()
