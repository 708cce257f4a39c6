"""SDP fetch of 100k stored bars against QuestDB's raw read paths into the same frame type.

Starts a real QuestDB (lab.servers), stores 100k one-minute bars through the SDK's QuestDB
store, then times, interleaved in one run:
  raw-pg       - one psycopg 3 binary query of the same rows, built into a polars frame;
  raw-csv      - GET /exp (CSV) of the same query, parsed by polars;
  raw-parquet  - GET /exp?fmt=parquet of the same query, decoded by polars;
  sdp          - SeamlessDataProvider.fetch over the columnar store (cache cleared each
                 time): storage read, trusted-read checks, coverage, SLA timing, metrics;
  sdp-pg       - the same fetch with the store on its PostgreSQL-wire fallback;
  sdp+fp       - sdp plus the canonical sha256 fingerprint of the frame.
(QuestDB 9.3.4's /exp refuses fmt=arrow with HTTP 400, so there is no Arrow row.)
Writes of the same 100k-bar frame, each followed by the same wait for the WAL apply:
  write-raw-rows  - the questdb client's row API (one Sender.row per bar, one flush);
  write-raw-post  - one POST /write of an ILP body built beforehand (the wire's floor);
  write-store     - QuestDBBarStore.write: ILP built column-wise from the frame, one POST.
(The client's DataFrame API needs pandas, which the project does not ship.)
Targets (issue 13): sdp <= 1.2x the fastest raw read; write-store <= 1.2x the fastest
raw write.
  .venv/bin/python benchmarks/bench_provider.py [--bars 100000] [--runs 9]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import time
from typing import Any

import httpx
import polars as pl
import psycopg
from prometheus_client import CollectorRegistry
from questdb import Sender, TimestampNanos
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.storage import QuestDBBarStore
from seamless.data.storage.questdb import ilp_lines
from seamless.logging import configure_logging
from seamless.metrics import SeamlessMetrics
from seamless.testing import synthetic_bars

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


def exp_query(table: str, end: int) -> str:
    return (
        f"SELECT cast(ts AS LONG) / 1000000 ts, open, high, low, close, volume FROM {table} "
        f"WHERE node_id = 'bench' AND bar_interval = {IV} "
        f"AND ts BETWEEN cast(0 AS TIMESTAMP) AND cast({end * 1_000_000} AS TIMESTAMP)"
    )


async def raw_exp(client: httpx.AsyncClient, query: str, fmt: str) -> pl.DataFrame:
    params = {"query": query} if fmt == "csv" else {"query": query, "fmt": fmt}
    response = await client.get("/exp", params=params)
    response.raise_for_status()
    body = io.BytesIO(response.content)
    frame = pl.read_csv(body, schema=SCHEMA) if fmt == "csv" else pl.read_parquet(body)
    return frame


async def run(bars: int, runs: int) -> None:
    configure_logging("WARNING")
    with QuestDBServer() as qdb:
        store = QuestDBBarStore(
            qdb.pg_dsn, qdb.ilp_http_conf, table_prefix="seamless_bench_", http_url=qdb.http_url
        )
        pg_store = QuestDBBarStore(qdb.pg_dsn, qdb.ilp_http_conf, table_prefix="seamless_bench_")
        end = IV * (bars - 1)
        frame = synthetic_bars(0, end, node_id="bench", interval=IV)
        await write_benchmark(store, qdb, frame, runs)

        def provider_on(s: QuestDBBarStore) -> SeamlessDataProvider:
            metrics = SeamlessMetrics(CollectorRegistry())
            return SeamlessDataProvider(store=s, strategy=Strategy.FAIL_FAST, metrics=metrics)

        provider, pg_provider = provider_on(store), provider_on(pg_store)
        conn = await psycopg.AsyncConnection.connect(qdb.pg_dsn, autocommit=True)
        client = httpx.AsyncClient(base_url=qdb.http_url, timeout=60)
        query = exp_query(store.table, end)

        async def sdp(p: SeamlessDataProvider, with_fp: bool) -> pl.DataFrame:
            p.invalidate_cache()
            result = await p.fetch(0, end, node_id="bench", interval=IV)
            if with_fp:
                assert result.fingerprint.startswith("sha256:")
            return result.frame

        jobs = {
            "raw-pg": lambda: raw_fetch(conn, store.table, end),
            "raw-csv": lambda: raw_exp(client, query, "csv"),
            "raw-parquet": lambda: raw_exp(client, query, "parquet"),
            "sdp": lambda: sdp(provider, False),
            "sdp-pg": lambda: sdp(pg_provider, False),
            "sdp+fp": lambda: sdp(provider, True),
        }
        timings: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(2):  # warm-up: connections, table metadata, QuestDB's page cache
            frames = [await job() for job in jobs.values()]
        assert all(f.height == bars for f in frames)
        assert all(f.equals(frames[0]) for f in frames), "every path reads the same bars"
        for _ in range(runs):
            for name, job in jobs.items():
                t0 = time.perf_counter()
                await job()
                timings[name].append((time.perf_counter() - t0) * 1000)
        await conn.close()
        await client.aclose()
        await store.aclose()
        await pg_store.aclose()
    med = {name: statistics.median(v) for name, v in timings.items()}
    raws = [name for name in med if name.startswith("raw")]
    fastest = min(raws, key=med.__getitem__)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'path':12} {'median ms':>10} {'min ms':>8} {'/ raw-pg':>9} {'/ ' + fastest:>14}")
    for name, values in timings.items():
        print(
            f"{name:12} {med[name]:10.1f} {min(values):8.1f} {med[name] / med['raw-pg']:9.2f} "
            f"{med[name] / med[fastest]:14.2f}"
        )
    ratio = med["sdp"] / med[fastest]
    verdict = "ok" if ratio <= 1.2 else "MISSED"
    print(
        f"sdp / {fastest} = {ratio:.2f} (target <= 1.2: {verdict}); "
        f"sdp / raw-pg = {med['sdp'] / med['raw-pg']:.2f}; "
        f"sdp-pg / raw-pg = {med['sdp-pg'] / med['raw-pg']:.2f}; "
        f"with fingerprint {med['sdp+fp'] / med[fastest]:.2f}"
    )


async def write_benchmark(
    store: QuestDBBarStore, qdb: QuestDBServer, frame: pl.DataFrame, runs: int
) -> None:
    await store.ensure_table()
    columns = ("open", "high", "low", "close", "volume")

    def raw_rows() -> None:
        with Sender.from_conf(qdb.ilp_http_conf) as sender:
            for ts, *values in frame.iter_rows():
                sender.row(
                    store.table,
                    symbols={"node_id": "bench"},
                    columns={"bar_interval": IV, **dict(zip(columns, values, strict=True))},
                    at=TimestampNanos(int(ts) * 1_000_000_000),
                )
            sender.flush()

    body = ilp_lines(store.table, "bench", IV, frame)
    client = httpx.AsyncClient(base_url=qdb.http_url, timeout=60)

    async def raw_post() -> None:
        response = await client.post("/write", params={"precision": "n"}, content=body)
        assert response.status_code == 204, response.text

    jobs: dict[str, Any] = {
        "write-raw-rows": lambda: asyncio.to_thread(raw_rows),
        "write-raw-post": raw_post,
        "write-store": lambda: store.write("bench", IV, frame),
    }
    timings: dict[str, list[float]] = {name: [] for name in jobs}
    for round_ in range(runs // 2 + 2):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            await job()
            await store._wait_applied()
            if round_ >= 2:  # the first rounds warm up the table and the WAL
                timings[name].append((time.perf_counter() - t0) * 1000)
    await client.aclose()
    med = {name: statistics.median(v) for name, v in timings.items()}
    fastest = min(("write-raw-rows", "write-raw-post"), key=med.__getitem__)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'write path':15} {'median ms':>10} {'min ms':>8} {'/ ' + fastest:>17}")
    for name, values in timings.items():
        print(f"{name:15} {med[name]:10.1f} {min(values):8.1f} {med[name] / med[fastest]:17.2f}")
    ratio = med["write-store"] / med[fastest]
    print(
        f"write-store / {fastest} = {ratio:.2f} (target <= 1.2: "
        f"{'ok' if ratio <= 1.2 else 'MISSED'}); write-store / write-raw-rows = "
        f"{med['write-store'] / med['write-raw-rows']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(run(args.bars, args.runs))


if __name__ == "__main__":
    main()
