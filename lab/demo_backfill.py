"""The lab's demo backfill: several SDK workers, each with its own coordinator client and
identity, ask for the same history at once; the coordinator's leases split the shards
between them. Afterwards the invariants are checked on what really happened: every shard
fetched from upstream exactly once, every bar stored exactly once, every worker served the
whole range, and every worker's job reporting a completion ratio of 1.0 (a shard another
worker completed counts for every job that needs it).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from prometheus_client import CollectorRegistry
from seamless.config.loading import load_section
from seamless.data.backfill import BackfillConfig
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.storage.questdb import QuestDBBarStore, ilp_http_target
from seamless.factory import ProviderSettings, create_provider
from seamless.metrics import SeamlessMetrics
from seamless.testing import MemoryCallLog, SyntheticFetcher

INTERVAL = 60
WINDOW_BARS = 900
GRID = WINDOW_BARS * INTERVAL


@dataclass
class Invariant:
    name: str
    ok: bool
    detail: str


@dataclass
class DemoResult:
    workers: int
    shards: int
    bars: int
    duration_s: float
    shards_by_worker: dict[str, int]
    invariants: list[Invariant] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.invariants)


async def run_demo(
    coordinator_url: str,
    token: str,
    pg_dsn: str,
    ilp_conf: str,
    *,
    workers: int = 4,
    shards: int = 32,
    fetch_latency_ms: float = 20.0,
) -> DemoResult:
    node_id = f"lab-demo-{secrets.token_hex(3)}"
    start = 29_220 * GRID  # on the shard grid
    end = start + shards * GRID - INTERVAL
    calls = MemoryCallLog()  # shared by every worker's fetcher: counts upstream calls
    ilp = ilp_http_target(ilp_conf)
    providers: list[SeamlessDataProvider] = []
    for i in range(workers):
        # each worker is an SDK built from a `seamless` config in one call
        config = load_section(
            {
                "profile": "prod",
                "coordinator_url": coordinator_url,
                "coordinator_token": token,
                "questdb_dsn": pg_dsn,
                "seamless_worker_id": f"lab-worker-{i}",
            },
            env={},
            source="lab",
        )
        settings = ProviderSettings(
            strategy=Strategy.AUTO_BACKFILL,
            backfill=BackfillConfig(window_bars=WINDOW_BARS, max_concurrent_requests=4),
            questdb_http_url=None if ilp is None else ilp[0],
            metrics=SeamlessMetrics(CollectorRegistry()),
        )
        fetcher = SyntheticFetcher(seed=11, latency_ms=fetch_latency_ms, call_log=calls)
        providers.append(await create_provider(config, fetcher=fetcher, settings=settings, env={}))
    stores = [p.store for p in providers]
    assert all(isinstance(s, QuestDBBarStore) for s in stores)
    began = time.monotonic()
    try:
        results = await asyncio.gather(
            *(p.fetch(start, end, node_id=node_id, interval=INTERVAL) for p in providers)
        )
        duration = time.monotonic() - began
        by_worker: dict[str, int] = {}
        ratios: list[float | None] = []
        for i, result in enumerate(results):
            report = result.metadata.backfill
            by_worker[f"lab-worker-{i}"] = len(report.completed) if report else 0
            ratios.append(report.completion_ratio if report else None)
        table = stores[0].table  # type: ignore[attr-defined]
        rows, distinct = _count_rows(pg_dsn, table, node_id)
    finally:
        for provider in providers:
            await provider.aclose()
            if provider.coordinator is not None:
                await provider.coordinator.aclose()
            await provider.store.aclose()

    expected_bars = shards * WINDOW_BARS
    fetched = Counter({key[2]: n for key, n in calls.counts().items() if key[0] == node_id})
    twice = [s for s, n in fetched.items() if n > 1]
    served = [r.frame.height for r in results]
    invariants = [
        Invariant(
            "every shard fetched from upstream exactly once",
            len(fetched) == shards and not twice,
            f"{len(fetched)} of {shards} shards fetched; fetched more than once: {len(twice)}",
        ),
        Invariant(
            "the shards were shared between the workers",
            sum(by_worker.values()) == shards and sum(1 for n in by_worker.values() if n) > 1,
            ", ".join(f"{w}: {n}" for w, n in by_worker.items()),
        ),
        Invariant(
            "every bar stored exactly once",
            rows == distinct == expected_bars,
            f"{rows} rows, {distinct} distinct ts, {expected_bars} expected",
        ),
        Invariant(
            "every worker was served the whole range",
            all(n == expected_bars for n in served),
            f"bars served per worker: {served}",
        ),
        Invariant(
            # each worker's backfill is a job of its own over all the shards; the coordinator
            # counts a shard done for a job whoever completed it, so every job ends at 1.0
            "every worker's job reports completion ratio 1.0",
            all(r is not None and abs(r - 1.0) < 1e-9 for r in ratios),
            "completion ratios: " + ", ".join(f"{r:.4f}" if r is not None else "-" for r in ratios),
        ),
    ]
    return DemoResult(workers, shards, expected_bars, duration, by_worker, invariants)


def _count_rows(pg_dsn: str, table: str, node_id: str) -> tuple[int, int]:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT count(), count_distinct(ts) FROM {table} WHERE node_id = %s", (node_id,)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
