"""Scenario 6: Redis behind the coordinator is slow, then stops answering, then recovers."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from seamless.errors import CoordinatorUnavailable

from chaos.conftest import ScenarioRun, wait_for
from chaos.topology import ChaosTopology
from chaos.workload import INTERVAL, make_worker, shard_span, standard_invariants
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


def _health(topology: ChaosTopology) -> tuple[int, str]:
    response = httpx.get(f"{topology.coordinator.url}/healthz", timeout=5.0)
    return response.status_code, response.text


@pytest.mark.scenario(
    6,
    "Redis slow or timing out behind the coordinator",
    fault="coordinator → Redis proxy: `latency` 1500 ms on replies, then a `timeout` toxic "
    "(replies dropped: scripts run in Redis but the coordinator never hears back), then removed",
    expected="/healthz answers 503 while Redis is slow or silent; workers get "
    "CoordinatorUnavailable (never 'no lease'); after recovery every shard completes, "
    "including those whose claim ran in Redis while its reply was lost",
)
async def test_redis_slow_or_timing_out(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s06")
    workers = [
        make_worker(topology, f"s06-w{i}", store=topology.store(prefix), client_timeout=4.0)
        for i in range(2)
    ]
    start, end = shard_span(3)
    redis_link = topology.redis_proxy

    with redis_link.toxic("latency", latency=1_500):
        slow_status, slow_body = await asyncio.to_thread(_health, topology)
    scenario.observe(f"Redis slow: /healthz {slow_status} {slow_body}")

    with redis_link.toxic("timeout", timeout=0):
        silent_status, silent_body = await asyncio.to_thread(_health, topology)
        outages = await asyncio.gather(*(w.fetch(start, end, "s06-node") for w in workers))
        direct = topology.client("s06-probe", timeout=4.0)
        try:
            probe: object = await direct.claim("s06-probe:60:0:0::", 1_500)
        except CoordinatorUnavailable as exc:
            probe = exc
    scenario.observe(f"Redis silent: /healthz {silent_status} {silent_body}")
    scenario.observe(
        "fetches during the outage: " + "; ".join(f"{type(o.error).__name__}" for o in outages)
    )
    scenario.observe(f"a bare claim during the outage: {probe!r}"[:300])
    scenario.expect(
        "/healthz answers 503 while Redis is slow and while it is silent",
        slow_status == 503 and silent_status == 503,
        f"slow {slow_status}, silent {silent_status}",
    )
    scenario.expect(
        "every fetch during the outage raised CoordinatorUnavailable (no silent skip)",
        all(isinstance(o.error, CoordinatorUnavailable) for o in outages),
        "; ".join(repr(o.error)[:120] for o in outages),
    )
    scenario.expect(
        "a bare claim raises CoordinatorUnavailable, never 'not granted'",
        isinstance(probe, CoordinatorUnavailable),
        repr(probe)[:200],
    )

    await wait_for(lambda: _health(topology)[0] == 200, timeout=15, what="/healthz back to 200")
    recovered = await asyncio.gather(*(w.fetch(start, end, "s06-node") for w in workers))
    scenario.observe(
        "after recovery: "
        + "; ".join(f"{o.result.frame.height if o.result else o.error!r} bars" for o in recovered)
    )
    scenario.expect(
        "after recovery every shard completes and both workers get the whole window",
        all(
            o.result is not None and not o.result.metadata.missing and o.result.frame.height == 90
            for o in recovered
        ),
        "; ".join(
            f"missing {o.result.metadata.missing}" if o.result else repr(o.error) for o in recovered
        ),
    )
    shard_keys = [f"s06-node:{INTERVAL}:{s}:{s + 1740}::" for s in (0, 1800, 3600)]
    final = await topology.inspect(shard_keys)
    scenario.expect(
        "all three shard keys completed",
        all(info.state == "completed" for info in final.values()),
        ", ".join(
            f"{k.split(':')[2]}={v.state} after {v.attempts} claim(s)" for k, v in final.items()
        ),
    )
    for check in await standard_invariants(topology, workers, prefix):
        scenario.check(check)
