"""Scenario 5: a stale worker: its messages reach the coordinator only after its lease ran out."""

from __future__ import annotations

import asyncio

import pytest
from seamless.testing import SyntheticFetcher

from chaos.conftest import ScenarioRun, wait_for
from chaos.topology import ChaosTopology
from chaos.workload import (
    INTERVAL,
    GatedFetcher,
    chaos_backfill,
    make_worker,
    shard_span,
    standard_invariants,
)
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]

LEASE_MS = 900
DELAY_MS = 2_500


@pytest.mark.scenario(
    5,
    "Stale worker: renewals delayed past the TTL",
    fault=f"`latency` {DELAY_MS} ms on the requests of worker A (upstream), added after A's "
    f"claim of a {LEASE_MS} ms lease: A's renewals and its final `complete` arrive after the "
    "lease ran out",
    expected="B re-claims (higher token) and completes; A's late complete is refused as stale "
    "(A counts the shard abandoned); the bars are served once, B's token winning",
)
async def test_stale_worker_complete_is_refused(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s05")
    node = "s05-node"
    gated = GatedFetcher(SyntheticFetcher(seed=7))
    a = make_worker(
        topology,
        "s05-a",
        store=topology.store(prefix),
        fetcher=gated,
        backfill=chaos_backfill(lease_ms=LEASE_MS),
        client_timeout=DELAY_MS / 1000 + 4,  # A waits for its late answers
    )
    b = make_worker(
        topology, "s05-b", store=topology.store(prefix), backfill=chaos_backfill(lease_ms=LEASE_MS)
    )
    start, end = shard_span(1)
    key = f"{node}:{INTERVAL}:{start}:{end}::"

    a_task = asyncio.create_task(a.fetch(start, end, node))
    granted = await wait_for(
        lambda: topology.audit.of("claim", "granted"), timeout=10, what="A's claim"
    )
    a_token = granted[0].token
    with topology.worker_proxy(a.name).toxic("latency", stream="upstream", latency=DELAY_MS):
        # B finds the shard missing and held by A, and waits for the lease to run out...
        b_task = asyncio.create_task(b.fetch(start, end, node))
        await wait_for(
            lambda: [e for e in topology.audit.of("claim", "held") if e.worker == b.name],
            timeout=10,
            what="B refused while A holds the shard",
        )
        gated.gate.set()  # ...while A fetches and writes; its renewals and complete are late
        await asyncio.wait_for(b_task, timeout=15)
        a_request = await asyncio.wait_for(a_task, timeout=15)

    b_tokens = [e.token for e in topology.audit.of("claim", "granted") if e.worker == b.name]
    a_completes = [e for e in topology.audit.of("complete") if e.worker == a.name]
    b_completes = [e for e in topology.audit.of("complete", "accepted") if e.worker == b.name]
    scenario.observe(f"A: token {a_token}; its complete answered {[e.answer for e in a_completes]}")
    scenario.observe(f"B: token {b_tokens}; completes accepted {len(b_completes)}")
    backfill = a_request.result.metadata.backfill if a_request.result else None
    scenario.observe(
        f"A's backfill: completed {backfill and backfill.completed}, abandoned "
        f"{backfill and backfill.abandoned}; downgrade "
        f"{a_request.result and a_request.result.metadata.downgrade}"
    )
    scenario.expect(
        "B re-claimed with a higher token and completed before A's complete arrived",
        len(b_tokens) == 1
        and a_token is not None
        and (b_tokens[0] or 0) > a_token
        and len(b_completes) == 1
        and bool(a_completes)
        and b_completes[0].answered_at < a_completes[0].answered_at,
        f"A {a_token}, B {b_tokens}",
    )
    scenario.expect(
        "A's late complete is refused as stale",
        [e.answer for e in a_completes] == ["stale"],
        f"{[e.answer for e in a_completes]}",
    )
    scenario.expect(
        "A counts the shard abandoned, not completed",
        backfill is not None
        and not backfill.completed
        and len(backfill.abandoned) == 1
        and a.counter("backfill_abandoned_total") == 1,
        f"abandoned metric {a.counter('backfill_abandoned_total')}",
    )
    # The store fences by token: A's write is refused if B's bars are stored first, and
    # superseded on read if A's landed first; either way 30 bars are served once.
    rows = [r for r in topology.stored_token_rows(prefix) if r[0] == node]
    tokens = {r[3] for r in rows}
    direct = topology.direct_store(prefix)
    served = await direct.read(node, INTERVAL, start, end)
    await direct.aclose()
    scenario.expect(
        "the shard's 30 bars are stored at most once per holder and served once",
        len({r[2] for r in rows}) == 30
        and tokens <= {a_token, *b_tokens}
        and (b_tokens or [None])[0] in tokens
        and served.height == 30
        and a.fetcher.calls()[(node, INTERVAL, start, end)] == 1,
        f"{len(rows)} rows under tokens {sorted(t or 0 for t in tokens)}; served "
        f"{served.height}; A fetched {a.fetcher.calls()[(node, INTERVAL, start, end)]}x",
    )
    final = await topology.inspect([key])
    scenario.expect(
        "the key ends completed under B's token",
        final[key].state == "completed" and final[key].token == (b_tokens or [None])[0],
        f"{final[key].state} token {final[key].token}",
    )
    stale = topology.coordinator_counter(
        "seamless_coordinator_stale_rejections_total", operation="complete"
    )
    scenario.expect("coordinator counted the stale complete", stale == 1, f"{stale}")
    for check in await standard_invariants(topology, [a, b], prefix):
        scenario.check(check)
