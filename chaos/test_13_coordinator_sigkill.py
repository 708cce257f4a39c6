"""Scenario 13: the coordinator process is SIGKILLed mid-job and started again."""

from __future__ import annotations

import asyncio

import pytest
from seamless.testing import SyntheticFetcher

from chaos.conftest import ScenarioRun, wait_for
from chaos.topology import ChaosTopology
from chaos.workload import (
    GatedFetcher,
    chaos_backfill,
    make_worker,
    shard_span,
    standard_invariants,
)
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

# The restart must fit inside one lease, including a coordinator process start on a machine
# whose CPUs are oversubscribed (several seconds there): renewals every 10 s, retried every
# 2.5 s while they fail.
LEASE_MS = 30_000


@pytest.mark.scenario(
    13,
    "Coordinator killed (SIGKILL) mid-job and restarted",
    fault="SIGKILL of the coordinator process while a worker holds two shard leases; the "
    "worker's renewals fail until the process is started again on the same port",
    expected="the leases live on in Redis: after the restart the worker's renewals with its "
    "original tokens succeed, it completes both shards without a re-claim, and the job "
    "reports completion ratio 1.0",
)
async def test_coordinator_sigkill_and_restart(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s13")
    gated = GatedFetcher(SyntheticFetcher(seed=7))
    worker = make_worker(
        topology,
        "s13-w",
        store=topology.store(prefix),
        fetcher=gated,
        backfill=chaos_backfill(lease_ms=LEASE_MS),
    )
    start, end = shard_span(2)
    job = asyncio.create_task(worker.fetch(start, end, "s13-node"))
    await wait_for(
        lambda: len(topology.audit.of("claim", "granted")) == 2,
        timeout=10,
        what="two shard claims",
    )
    tokens = {e.key: e.token for e in topology.audit.of("claim", "granted")}

    await asyncio.to_thread(topology.kill_coordinator)
    scenario.observe(f"coordinator SIGKILLed with leases {tokens}")
    await wait_for(
        lambda: topology.audit.count("renew", "unavailable") >= 1,
        timeout=LEASE_MS / 1000,
        what="a renewal failing while the coordinator is down",
    )
    failed_renewals = topology.audit.count("renew", "unavailable")
    await asyncio.to_thread(topology.start_coordinator)
    scenario.observe(f"restarted after {failed_renewals} failed renewal(s)")
    await wait_for(
        lambda: topology.audit.count("renew", "accepted") >= 2,
        timeout=LEASE_MS / 1000,
        what="renewals accepted by the restarted coordinator",
    )
    gated.gate.set()
    request = await asyncio.wait_for(job, timeout=LEASE_MS / 1000)

    report = request.result.metadata.backfill if request.result else None
    completes = topology.audit.of("complete", "accepted")
    scenario.observe(
        f"after the restart: renewals accepted {topology.audit.count('renew', 'accepted')}; "
        f"completed {report and report.completed}; ratio {report and report.completion_ratio}"
    )
    scenario.expect(
        "no re-claim: the original tokens renewed and completed both shards",
        topology.audit.count("claim", "granted") == 2
        and {e.key: e.token for e in completes} == tokens,
        f"completes {[(e.key, e.token) for e in completes]}",
    )
    scenario.expect(
        "the job completes with ratio 1.0 and the whole window",
        report is not None
        and report.completion_ratio == 1.0
        and request.result is not None
        and not request.result.metadata.missing,
        f"{report and report.completion_ratio}",
    )
    for check in await standard_invariants(topology, [worker], prefix):
        scenario.check(check)
