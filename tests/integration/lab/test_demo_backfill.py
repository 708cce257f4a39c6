"""The lab's demo backfill against the real coordinator and QuestDB: its invariants hold,
and they are real checks (each names what it saw)."""

from __future__ import annotations

import pytest

from lab.coordinator_process import CoordinatorServer
from lab.demo_backfill import run_demo
from lab.servers import QuestDBServer

pytestmark = pytest.mark.integration


async def test_demo_backfill_invariants_hold(
    coordinator_server: CoordinatorServer, questdb_server: QuestDBServer
) -> None:
    result = await run_demo(
        coordinator_server.url,
        coordinator_server.token,
        questdb_server.pg_dsn,
        questdb_server.ilp_http_conf,
        workers=3,
        shards=12,
        fetch_latency_ms=10.0,
    )
    broken = [f"{check.name}: {check.detail}" for check in result.invariants if not check.ok]
    assert result.ok, broken
    assert len(result.invariants) == 5
    assert sum(result.shards_by_worker.values()) == 12
    ratios = next(c for c in result.invariants if "completion ratio" in c.name).detail
    assert ratios == "completion ratios: 1.0000, 1.0000, 1.0000"
