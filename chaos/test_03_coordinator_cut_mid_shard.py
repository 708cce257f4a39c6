"""Scenario 3: the worker's link to the coordinator is cut while it holds a shard."""

from __future__ import annotations

import pytest

from chaos.conftest import ScenarioRun
from chaos.topology import ChaosTopology
from chaos.workload import lease_loss_then_reclaim
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]


@pytest.mark.scenario(
    3,
    "Coordinator cut off mid-shard",
    fault="worker A's proxy to the coordinator disabled right after A's claim (900 ms lease), "
    "while A's fetch (4 s) is still running",
    expected="A's renewals fail, A abandons the shard without writing it (counted); the lease "
    "expires; worker B re-claims it with a higher token and completes it",
)
async def test_coordinator_cut_off_mid_shard(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    await lease_loss_then_reclaim(topology, scenario, tag="s03", fault=lambda proxy: proxy.down())
