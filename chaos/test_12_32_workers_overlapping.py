"""Scenario 12: 32 workers backfill overlapping ranges through a jittery coordinator link."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from seamless.testing import MemoryCallLog, SyntheticFetcher

from chaos.conftest import ScenarioRun
from chaos.topology import ChaosTopology
from chaos.workload import (
    INTERVAL,
    WINDOW_BARS,
    chaos_backfill,
    make_worker,
    shard_span,
    standard_invariants,
)
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

WORKERS = 32
SHARDS = 8
LATENCY_MS, JITTER_MS = 25, 25
LEASE_MS = 30_000


@pytest.mark.scenario(
    12,
    "32 workers on overlapping ranges, jittered coordinator latency",
    fault=f"{WORKERS} workers, each behind its own proxy with `latency` {LATENCY_MS}±{JITTER_MS} "
    f"ms, fetching overlapping 3-shard windows of one {SHARDS}-shard series",
    expected="every shard fetched exactly once across all workers (fetcher calls per shard = 1); "
    "every worker gets its whole window",
)
async def test_32_workers_never_backfill_a_shard_twice(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s12")
    store = topology.store(prefix)
    store.pool_size = 8  # one store object, shared like a process's pool would be
    calls = MemoryCallLog()
    workers = []
    for i in range(WORKERS):
        worker = make_worker(
            topology,
            f"s12-w{i:02d}",
            store=store,
            fetcher=SyntheticFetcher(seed=7, latency_ms=20, call_log=calls),
            # Wide enough that no lease expires while 32 workers share one event loop on an
            # oversubscribed machine: "fetched exactly once" is this scenario's claim.
            backfill=chaos_backfill(lease_ms=LEASE_MS, max_concurrent_requests=3),
            client_timeout=5.0,
        )
        topology.worker_proxy(worker.name).add_toxic(
            "latency", latency=LATENCY_MS, jitter=JITTER_MS
        )
        workers.append(worker)
    windows = [shard_span(3, i % (SHARDS - 2)) for i in range(WORKERS)]
    await store.ensure_table()
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(
                w.fetch(start, end, "s12-node")
                for w, (start, end) in zip(workers, windows, strict=True)
            )
        ),
        timeout=120,
    )
    per_shard = Counter(
        {(s, e): n for (node, _iv, s, e), n in calls.counts().items() if node == "s12-node"}
    )
    expected_shards = {shard_span(1, k) for k in range(SHARDS)}
    scenario.observe(
        f"fetcher calls per shard: {sorted(per_shard.values())}; "
        f"errors: {[repr(o.error)[:80] for o in outcomes if o.error]}"
    )
    completed_by = Counter(e.worker for e in topology.audit.of("complete", "accepted"))
    scenario.observe(
        f"shards completed by {len(completed_by)} distinct workers; "
        f"claims refused as held: {topology.audit.count('claim', 'held')}"
    )
    gauges = [
        value
        for (name, _labels), value in topology.coordinator_metrics().items()
        if name == "backfill_completion_ratio"
    ]
    scenario.observe(
        f"coordinator backfill_completion_ratio gauges: min {min(gauges, default=0):.2f}, "
        f"max {max(gauges, default=0):.2f} over {len(gauges)} keys; jobs finished: "
        f"{len(topology.audit.finished_jobs())}/{WORKERS}"
    )
    scenario.expect(
        "no shard backfilled twice: one fetcher call per shard",
        set(per_shard) == expected_shards and all(n == 1 for n in per_shard.values()),
        str(dict(per_shard)),
    )
    scenario.expect(
        "every worker got its whole window",
        all(
            o.result is not None
            and not o.result.metadata.missing
            and o.result.frame.height == 3 * WINDOW_BARS
            for o in outcomes
        ),
        f"{sum(1 for o in outcomes if o.result and not o.result.metadata.missing)}/{WORKERS}",
    )
    rows = topology.stored_rows(prefix)
    # A bar refetched under a newer lease is stored once per token (reads serve the newest):
    # "whole" is every bar of the series present; duplicates per token are `rows_unique`'s.
    bars = {(node, iv, ts) for node, iv, ts in rows}
    whole = {
        ("s12-node", INTERVAL, ts) for ts in range(0, SHARDS * WINDOW_BARS * INTERVAL, INTERVAL)
    }
    scenario.expect(
        "the series is stored whole",
        bars == whole,
        f"{len(bars)} distinct bars of {len(whole)} in {len(rows)} rows; interval {INTERVAL}",
    )
    for check in await standard_invariants(topology, workers, prefix):
        scenario.check(check)
