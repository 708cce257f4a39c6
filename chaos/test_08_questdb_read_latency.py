"""Scenario 8: QuestDB reads (PostgreSQL wire) slower than the storage budget."""

from __future__ import annotations

import asyncio

import pytest
from seamless.data.sla import OnViolation
from seamless.errors import SeamlessSLAExceeded
from seamless.testing import synthetic_bars

from chaos.conftest import ScenarioRun
from chaos.topology import ChaosTopology
from chaos.workload import INTERVAL, make_worker, scaled_preset, shard_span, standard_invariants
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]

BUDGET_MS = 300
LATENCY_MS = 800


@pytest.mark.scenario(
    8,
    "QuestDB read latency above max_wait_storage_ms",
    fault=f"`latency` {LATENCY_MS} ms on the QuestDB PostgreSQL-wire proxy; storage budget "
    f"{BUDGET_MS} ms; the stores start cold, so deadlines also hit while connecting",
    expected="baseline: SeamlessSLAExceeded(phase=storage_wait) on every try; tolerant-partial: "
    "a downgraded answer naming storage_wait; after the fault the same stores serve the "
    "window (no connection leaked by the cancelled reads)",
)
async def test_questdb_read_latency(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s08")
    start, end = shard_span(2)
    direct = topology.direct_store(prefix)
    await direct.write(
        "s08-node",
        INTERVAL,
        synthetic_bars(start, end, node_id="s08-node", interval=INTERVAL, seed=7),
    )
    await direct.aclose()
    strict_store = topology.store(prefix)
    strict_store.pool_size = 2  # fewer slots than timed-out reads: a leak would wedge it
    strict = make_worker(
        topology,
        "s08-strict",
        store=strict_store,
        sla=scaled_preset("baseline", max_wait_storage_ms=BUDGET_MS),
    )
    tolerant = make_worker(
        topology,
        "s08-tolerant",
        store=topology.store(prefix),
        sla=scaled_preset("tolerant-partial", max_wait_storage_ms=BUDGET_MS, min_coverage=0.0),
    )
    with topology.questdb_pg_proxy().toxic("latency", latency=LATENCY_MS):
        breaches = [await strict.fetch(start, end, "s08-node") for _ in range(3)]
        slow = await tolerant.fetch(start, end, "s08-node")
    phases = [getattr(b.error, "phase", repr(b.error)) for b in breaches]
    scenario.observe(f"baseline, 3 tries: {[repr(b.error)[:90] for b in breaches]}")
    scenario.expect(
        "baseline raises SeamlessSLAExceeded(storage_wait) each time",
        all(isinstance(b.error, SeamlessSLAExceeded) for b in breaches)
        and phases == ["storage_wait"] * 3,
        str(phases),
    )
    downgrade = slow.result.metadata.downgrade if slow.result else None
    scenario.observe(f"tolerant-partial: {downgrade}; error {slow.error!r}")
    scenario.expect(
        "tolerant-partial answers downgraded, naming storage_wait",
        downgrade is not None
        and downgrade.mode is OnViolation.PARTIAL_FILL
        and any(r.startswith("storage_wait") for r in downgrade.reasons),
        str(downgrade),
    )
    # The backfill that tolerant-partial started may still be running: let it finish.
    await asyncio.wait_for(tolerant.provider.wait_background(), timeout=20)
    healed = [
        await asyncio.wait_for(w.fetch(start, end, "s08-node"), timeout=10)
        for w in (strict, tolerant)
    ]
    scenario.observe(
        "after the fault: "
        + ", ".join(f"{h.result.frame.height if h.result else repr(h.error)}" for h in healed)
    )
    scenario.expect(
        "after the fault both stores serve the whole window from storage",
        all(
            h.result is not None
            and h.result.frame.height == 60
            and h.result.metadata.sources == ["storage"]
            for h in healed
        ),
        "; ".join(
            repr(h.error) if h.result is None else str(h.result.metadata.sources) for h in healed
        ),
    )
    for check in await standard_invariants(topology, [strict, tolerant], prefix):
        scenario.check(check)
