"""Scenario 9: the ILP (HTTP) connection to QuestDB is cut in the middle of a write."""

from __future__ import annotations

import asyncio

import pytest

from chaos.conftest import ScenarioRun, wait_for
from chaos.topology import ChaosTopology
from chaos.workload import INTERVAL, make_worker, shard_span, standard_invariants
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]

CUT_AFTER_BYTES = 1_024  # a 30-bar batch is ~4 KB of ILP: the cut lands mid-body


@pytest.mark.scenario(
    9,
    "QuestDB connection reset during an ILP write",
    fault=f"`limit_data` ({CUT_AFTER_BYTES} bytes, upstream) on the ILP/HTTP proxy: every "
    "connection is closed part-way through the batch, until the scenario sees a cut "
    "connection and removes the toxic",
    expected="the ILP client retries the write on a new connection; the shards complete "
    "without a refetch; the table holds every row exactly once",
)
async def test_questdb_ilp_reset_mid_write(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s09")
    store = topology.store(prefix)
    await store.ensure_table()  # the table exists, so the cut hits a row batch
    worker = make_worker(topology, "s09-w", store=store)
    ilp = topology.questdb_ilp_proxy()
    start, end = shard_span(2)
    cut_before = topology.proxy_log_events(ilp, "Source terminated")
    accepted_before = topology.proxy_log_events(ilp, "Accepted client")

    toxic = ilp.add_toxic("limit_data", stream="upstream", bytes=CUT_AFTER_BYTES)
    fetch = asyncio.create_task(worker.fetch(start, end, "s09-node"))
    try:
        await wait_for(
            lambda: topology.proxy_log_events(ilp, "Source terminated") > cut_before,
            timeout=20,
            what="an ILP connection cut mid-write",
        )
    finally:
        ilp.remove_toxic(toxic)
    request = await asyncio.wait_for(fetch, timeout=30)

    cuts = topology.proxy_log_events(ilp, "Source terminated") - cut_before
    connections = topology.proxy_log_events(ilp, "Accepted client") - accepted_before
    report = request.result.metadata.backfill if request.result else None
    scenario.observe(
        f"connections cut: {cuts // 2 or cuts} (toxiproxy 'Source terminated' lines: {cuts}); "
        f"ILP connections opened during the write: {connections}"
    )
    scenario.observe(
        f"fetch: {request.result.frame.height if request.result else repr(request.error)} bars; "
        f"completed {report and report.completed}, failed {report and report.failed}"
    )
    scenario.expect(
        "the write was retried on a new connection after the cut",
        cuts >= 1 and connections >= 2,
        f"{cuts} cut(s), {connections} connection(s)",
    )
    calls = worker.fetcher.calls()
    scenario.expect(
        "the shards completed without a refetch or a failed shard",
        report is not None
        and len(report.completed) == 2
        and not report.failed
        and all(n == 1 for n in calls.values())
        and len(calls) == 2,
        f"fetcher calls {dict(calls)}",
    )
    rows = [r for r in topology.stored_rows(prefix) if r[0] == "s09-node"]
    expected_ts = set(range(start, end + INTERVAL, INTERVAL))
    scenario.expect(
        "the table holds every row exactly once",
        len(rows) == len(expected_ts) and {ts for _, _, ts in rows} == expected_ts,
        f"{len(rows)} rows for {len(expected_ts)} bars",
    )
    for check in await standard_invariants(topology, [worker], prefix):
        scenario.check(check)
