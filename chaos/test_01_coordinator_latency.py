"""Scenario 1: coordinator answers slower than the backfill budget."""

from __future__ import annotations

import pytest
from seamless.data.sla import OnViolation
from seamless.errors import SeamlessSLAExceeded
from seamless.testing import SyntheticFetcher, synthetic_bars

from chaos.conftest import ScenarioRun, wait_for
from chaos.topology import ChaosTopology
from chaos.workload import (
    INTERVAL,
    GatedFetcher,
    make_worker,
    scaled_preset,
    shard_span,
    standard_invariants,
)
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]

BUDGET_MS = 400
LATENCY_MS = 700


@pytest.mark.scenario(
    1,
    "Coordinator latency above the backfill budget",
    fault=f"latency {LATENCY_MS} ms on every coordinator response (worker → coordinator "
    f"proxy); backfill budget {BUDGET_MS} ms",
    expected="baseline: SeamlessSLAExceeded(phase=backfill_wait); tolerant-partial: a result "
    "downgraded to partial_fill naming backfill_wait; the background backfill still finishes",
)
async def test_coordinator_latency_breaks_backfill_budget(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s01")
    store = topology.store(prefix)
    strict = make_worker(
        topology,
        "strict",
        store=store,
        sla=scaled_preset("baseline", max_wait_backfill_ms=BUDGET_MS),
    )
    # The tolerant worker's fetch is held until it has answered, so the shard it claimed
    # before the deadline cannot be stored before its partial answer is read, however slow
    # the machine (the answer is "what is stored at the deadline").
    held_fetch = GatedFetcher(SyntheticFetcher(seed=7))
    tolerant = make_worker(
        topology,
        "tolerant",
        store=store,
        fetcher=held_fetch,
        sla=scaled_preset("tolerant-partial", max_wait_backfill_ms=BUDGET_MS),
    )
    start, end = shard_span(2)
    # tolerant-partial forces HOLD below 90 % coverage: store all but the last 3 bars first,
    # so the slow backfill is what decides the downgrade.
    held_end = end - 3 * INTERVAL
    await store.write(
        "s01-tolerant",
        INTERVAL,
        synthetic_bars(start, held_end, node_id="s01-tolerant", interval=INTERVAL, seed=7),
    )
    with (
        topology.worker_proxy("strict").toxic("latency", latency=LATENCY_MS),
        topology.worker_proxy("tolerant").toxic("latency", latency=LATENCY_MS),
    ):
        breached = await strict.fetch(start, end, "s01-baseline")
        downgraded = await tolerant.fetch(start, end, "s01-tolerant")
        held_fetch.gate.set()
        # The shards claimed before the deadline finish in the background: wait for them.
        for worker in (strict, tolerant):
            await wait_for(
                lambda w=worker: w.provider.background_pending == 0,  # type: ignore[misc]
                timeout=30,
                what=f"{worker.name}'s background backfill",
            )

    error = breached.error
    scenario.observe(f"baseline: {type(error).__name__}: {error}")
    scenario.expect(
        "baseline raises SeamlessSLAExceeded(backfill_wait)",
        isinstance(error, SeamlessSLAExceeded) and error.phase == "backfill_wait",
        repr(error),
    )
    result = downgraded.result
    downgrade = None if result is None else result.metadata.downgrade
    scenario.observe(
        f"tolerant-partial: downgrade={downgrade}, missing={result and result.metadata.missing}"
    )
    scenario.expect(
        "tolerant-partial answers downgraded to partial_fill (backfill_wait)",
        downgrade is not None
        and downgrade.mode is OnViolation.PARTIAL_FILL
        and any(r.startswith("backfill_wait") for r in downgrade.reasons),
        str(downgrade),
    )
    scenario.expect(
        "tolerant-partial serves the stored 57 of 60 bars",
        result is not None and result.frame.height == 57,
        f"{result and result.frame.height} bars",
    )
    scenario.expect(
        "partial_fill_returns counted once",
        tolerant.counter("partial_fill_returns_total") == 1,
        f"{tolerant.counter('partial_fill_returns_total')}",
    )
    for check in await standard_invariants(topology, [strict, tolerant], prefix):
        scenario.check(check)
