"""Scenario 4: every connection of the worker to the coordinator is reset (TCP RST) while it
holds a shard, so its renewals never get an answer."""

from __future__ import annotations

import pytest

from chaos.conftest import ScenarioRun
from chaos.topology import ChaosTopology
from chaos.workload import lease_loss_then_reclaim
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]


@pytest.mark.scenario(
    4,
    "Lease loss by reset_peer on renew",
    fault="`reset_peer` toxic (timeout 0) on worker A's proxy to the coordinator right after "
    "A's claim: each renewal's connection is reset by peer",
    expected="as scenario 3: A's renewals fail, A abandons the shard unwritten; the lease "
    "expires; B re-claims with a higher token and completes it",
)
async def test_reset_peer_on_renew(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    await lease_loss_then_reclaim(
        topology,
        scenario,
        tag="s04",
        fault=lambda proxy: proxy.toxic("reset_peer", timeout=0),
    )
