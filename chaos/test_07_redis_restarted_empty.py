"""Scenario 7: Redis restarts empty (no persistence) while leases are live. The fencing
tokens must survive the data loss: no token issued before the restart is accepted after it,
and every token issued after it is greater."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from seamless.coordination.protocol import Lease
from seamless.errors import LeaseLost
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

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

LEASE_MS = 3_000


def _healthy(topology: ChaosTopology) -> bool:
    try:
        return httpx.get(f"{topology.coordinator.url}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.scenario(
    7,
    "Redis restarted empty while leases are live",
    fault="Redis (no persistence) restarted while worker A holds two shard leases and a bare "
    "client holds a third key: every lease and stored token is lost",
    expected="after the restart no pre-restart token is accepted (renew, complete, fail all "
    "409 stale); every new token is greater than every pre-restart token of its key; A "
    "abandons its shards, they are re-claimed and completed",
)
async def test_redis_restarted_empty(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s07")
    gated = GatedFetcher(SyntheticFetcher(seed=7))
    a = make_worker(
        topology,
        "s07-a",
        store=topology.store(prefix),
        fetcher=gated,
        backfill=chaos_backfill(lease_ms=LEASE_MS),
    )
    start, end = shard_span(2)
    a_task = asyncio.create_task(a.fetch(start, end, "s07-node"))
    await wait_for(
        lambda: len(topology.audit.of("claim", "granted")) == 2, timeout=10, what="A's claims"
    )
    x = topology.client("s07-x")
    y = topology.client("s07-y")
    lone_key = "s07-lone:60:0:0::"
    x_grant = await x.claim(lone_key, LEASE_MS)
    assert not isinstance(x_grant, type(None))
    before = {e.key: e.token for e in topology.audit.of("claim", "granted")}
    x_lease: Lease = x_grant.lease  # type: ignore[union-attr]
    scenario.observe(f"tokens before the restart: {before}")

    await asyncio.to_thread(topology.redis.restart)
    await wait_for(lambda: _healthy(topology), timeout=20, what="the coordinator on new Redis")
    scenario.observe("Redis restarted empty; coordinator healthy again")

    # Every pre-restart token, every operation: refused, nothing changed.
    answers: dict[str, str] = {}
    ops: list[tuple[str, Any]] = [
        ("renew", lambda: x.renew(x_lease, LEASE_MS)),
        ("fail", lambda: x.fail(x_lease, "probing after restart")),
        ("complete", lambda: x.complete(x_lease)),
    ]
    for name, call in ops:
        try:
            await call()
            answers[name] = "accepted"
        except LeaseLost as exc:
            answers[name] = f"stale ({exc.reason})"
    y_grant = await y.claim(lone_key, LEASE_MS)
    y_token = y_grant.lease.token  # type: ignore[union-attr]
    try:
        await x.complete(x_lease)
        answers["complete after Y's claim"] = "accepted"
    except LeaseLost:
        answers["complete after Y's claim"] = "stale"
    scenario.observe(f"pre-restart token {x_lease.token} after the restart: {answers}")
    scenario.expect(
        "no pre-restart token accepted after the restart",
        all(answer.startswith("stale") for answer in answers.values()),
        str(answers),
    )
    scenario.expect(
        "the first post-restart claim's token is greater than the pre-restart token",
        y_token > x_lease.token,
        f"{y_token} > {x_lease.token}",
    )
    lone = (await topology.inspect([lone_key]))[lone_key]
    scenario.expect(
        "the stale calls changed nothing: the key is Y's",
        lone.state == "held" and lone.token == y_token and lone.holder == "s07-y",
        f"{lone.state} token {lone.token} holder {lone.holder}",
    )
    await y.complete(y_grant.lease)  # type: ignore[union-attr]

    # A's leases are gone too: its next renewals are refused and it abandons both shards
    # before it ever writes (its fetches are held until then).
    await wait_for(
        lambda: len([e for e in topology.audit.of("renew", "stale") if e.worker == a.name]) >= 2,
        timeout=LEASE_MS / 1000 + 5,
        what="A's renewals refused after the restart",
    )
    gated.gate.set()
    a_request = await asyncio.wait_for(a_task, timeout=20)
    backfill = a_request.result.metadata.backfill if a_request.result else None
    scenario.observe(
        f"A: abandoned {backfill and backfill.abandoned}, completed "
        f"{backfill and backfill.completed}, error {a_request.error!r}"
    )
    a_stale = [e for e in topology.audit.of(answer="stale") if e.worker == a.name]
    scenario.expect(
        "A's pre-restart leases were refused as stale and abandoned",
        backfill is not None
        and len(backfill.abandoned) == 2
        and not backfill.completed
        and len(a_stale) >= 2,
        f"stale answers to A: {[(e.op, e.token) for e in a_stale]}",
    )
    b = make_worker(
        topology, "s07-b", store=topology.store(prefix), backfill=chaos_backfill(lease_ms=LEASE_MS)
    )
    # One fetch: the coordinator's pool replaced the connections the restart closed, so B's
    # first claims are answered (tests/integration/coordinator/test_coordinator_redis_restart).
    b_request = await b.fetch(start, end, "s07-node")
    scenario.observe(f"B's fetch: error {b_request.error!r}")
    after = {e.key: e.token for e in topology.audit.of("claim", "granted") if e.worker == b.name}
    scenario.observe(f"tokens after the restart: {after}")
    scenario.expect(
        "the shards were re-claimed with greater tokens and completed",
        set(after) == {k for k in before if k.startswith("s07-node")}
        and all((after[k] or 0) > (before[k] or 0) for k in after)
        and b_request.error is None
        and b_request.result is not None
        and not b_request.result.metadata.missing,
        f"before {before}, after {after}",
    )
    for check in await standard_invariants(topology, [a, b], prefix):
        scenario.check(check)
