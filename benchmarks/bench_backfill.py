"""4 SDK worker processes x 256 shards through the real coordinator and QuestDB.

Starts Redis, the seamless coordinator and QuestDB as local processes, then 4 worker
processes that each backfill the SAME 256-shard range (window_bars=100, fetcher latency
250 ms, max_concurrent_requests=8). Every fetch is logged to a shared file. Prints:
  - shards fetched more than once (target: 0);
  - makespan (go -> last shard completed) and the time until every worker had returned,
    against the ideal ceil(256 / (4 x 8)) x latency (target, issue 13: makespan <= 1.3x ideal
    with QuestDB).
  .venv/bin/python benchmarks/bench_backfill.py [--latency-ms 250] [--shards 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry
from seamless.coordination.client import CoordinatorClient
from seamless.data.backfill import BackfillConfig, Backfiller
from seamless.data.coverage import Range
from seamless.data.storage import MemoryBarStore, QuestDBBarStore
from seamless.logging import configure_logging
from seamless.metrics import SeamlessMetrics
from seamless.testing import FileCallLog, SyntheticFetcher

from lab.coordinator_process import CoordinatorServer
from lab.servers import QuestDBServer, RedisServer

IV = 60
WORKERS = 4
CONCURRENCY = 8
WINDOW_BARS = 100


async def worker(args: dict[str, str]) -> dict[str, object]:
    configure_logging("WARNING")
    client = CoordinatorClient(args["url"], token=args["token"], worker_id=args["name"])
    store: QuestDBBarStore | MemoryBarStore
    if args["store"] == "questdb":
        store = QuestDBBarStore(args["pg_dsn"], args["ilp_conf"], table_prefix="seamless_benchbf_")
        await store.ensure_table()
    else:
        store = MemoryBarStore()
    backfiller = Backfiller(
        coordinator=client,
        fetcher=SyntheticFetcher(
            latency_ms=float(args["latency_ms"]), call_log=FileCallLog(Path(args["calls"]))
        ),
        store=store,
        config=BackfillConfig(
            window_bars=WINDOW_BARS,
            max_concurrent_requests=CONCURRENCY,
            lease_ms=30_000,
            poll_initial_ms=25,
            poll_max_ms=250,
        ),
        metrics=SeamlessMetrics(CollectorRegistry()),
    )
    Path(args["ready"]).touch()
    go = Path(args["go"])
    while not go.exists():
        await asyncio.sleep(0.001)
    shards = int(args["shards"])
    report = await backfiller.run("benchbf", IV, [Range(0, IV * (shards * WINDOW_BARS - 1))])
    finished = time.time()
    await client.aclose()
    await store.aclose()
    return {
        "completed": len(report.completed),
        "done_elsewhere": len(report.done_elsewhere),
        "unresolved": len(report.unresolved),
        "failed": len(report.failed),
        "last_completion": max(report.completed_at, default=0.0),
        "finished": finished,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=250.0)
    parser.add_argument("--shards", type=int, default=256)
    parser.add_argument("--store", choices=["questdb", "memory"], default="questdb")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(json.loads(args.worker)))))
        return
    with (
        RedisServer() as redis,
        QuestDBServer() as qdb,
        tempfile.TemporaryDirectory() as tmp,
        CoordinatorServer(redis.url, key_prefix="seamless-bench:", log_level="warning") as co,
    ):
        run_dir = Path(tmp)
        procs = []
        for i in range(WORKERS):
            spec = {
                "url": co.url,
                "token": co.token,
                "name": f"bench-worker-{i}",
                "pg_dsn": qdb.pg_dsn,
                "ilp_conf": qdb.ilp_http_conf,
                "latency_ms": str(args.latency_ms),
                "calls": str(run_dir / "calls.log"),
                "ready": str(run_dir / f"ready{i}"),
                "go": str(run_dir / "go"),
                "shards": str(args.shards),
                "store": args.store,
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", json.dumps(spec)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + 120
        while not all((run_dir / f"ready{i}").exists() for i in range(WORKERS)):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("workers failed to start")
            time.sleep(0.01)
        go_at = time.time()
        (run_dir / "go").touch()
        results = [
            json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs
        ]
        counts = FileCallLog(run_dir / "calls.log").counts()
    twice = sum(1 for c in counts.values() if c > 1)
    ideal = math.ceil(args.shards / (WORKERS * CONCURRENCY)) * args.latency_ms / 1000
    makespan = max(float(r["last_completion"]) for r in results) - go_at
    all_back = max(float(r["finished"]) for r in results) - go_at
    print(
        f"workers={WORKERS} concurrency={CONCURRENCY} shards={args.shards} "
        f"latency={args.latency_ms:.0f} ms store={args.store} "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for i, r in enumerate(results):
        print(
            f"  worker {i}: completed {r['completed']}, done elsewhere {r['done_elsewhere']}, "
            f"unresolved {r['unresolved']}, failed {r['failed']}"
        )
    print(f"distinct shards fetched: {len(counts)}; fetched more than once: {twice} (target 0)")
    print(
        f"ideal makespan {ideal:.2f} s; makespan {makespan:.2f} s = {makespan / ideal:.2f}x "
        f"(target <= 1.3x: {'ok' if makespan / ideal <= 1.3 else 'MISSED'}); "
        f"all workers returned after {all_back:.2f} s = {all_back / ideal:.2f}x"
    )


if __name__ == "__main__":
    main()
