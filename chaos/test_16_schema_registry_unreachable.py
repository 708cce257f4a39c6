"""Scenario 16: the schema registry is unreachable while the SDK validates frames."""

from __future__ import annotations

import pytest
from seamless.data.bars import BAR_SCHEMA
from seamless.data.conformance import ConformancePipeline
from seamless.data.schema_registry import BarSchema, RemoteSchemaRegistry, SchemaStage
from seamless.errors import SchemaValidationError
from seamless.metrics import SeamlessMetrics

from chaos.conftest import ScenarioRun
from chaos.topology import ChaosTopology
from chaos.workload import INTERVAL, make_worker, shard_span, standard_invariants
from lab.registry import SchemaRegistryServer
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]

FAILURES = "seamless_schema_validation_failures_total"


@pytest.mark.scenario(
    16,
    "Schema registry unreachable",
    fault="the registry process is stopped after the approved schema was registered "
    "(connection refused on every look-up)",
    expected="canary: fetches are served and stored, every failed look-up counted in "
    "seamless_schema_validation_failures_total{mode=canary}; strict: the fetch raises "
    "SchemaValidationError naming the registry URL, nothing is stored, the lease is failed",
)
async def test_registry_unreachable_canary_serves_strict_blocks(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s15")
    start, end = shard_span(1)
    with SchemaRegistryServer() as registry_server:
        registry = RemoteSchemaRegistry(registry_server.url, timeout_s=1.0)
        registry.register("seamless.bars", BarSchema.from_dtypes(BAR_SCHEMA))
        registry_server.stop()
        workers = []
        for mode in ("canary", "strict"):
            metrics = SeamlessMetrics()
            stage = SchemaStage(
                registry, subject="seamless.bars", mode=mode, metrics=metrics, cache_ttl_s=0.0
            )
            worker = make_worker(
                topology,
                f"s15-{mode}",
                store=topology.store(prefix),
                conformance=ConformancePipeline(schema_stage=stage),
            )
            workers.append(worker)
            node = f"s15-{mode}"
            outcome = await worker.fetch(start, end, node)
            stored = [r for r in topology.stored_rows(prefix) if r[0] == node]
            failures = metrics.value(FAILURES, {"subject": "seamless.bars", "mode": mode})
            key = f"{node}:{INTERVAL}:{start}:{end}::"
            after = (await topology.inspect([key]))[key]
            scenario.observe(
                f"{mode}: {type(outcome.error).__name__ if outcome.error else 'served'} "
                f"{str(outcome.error)[:140] if outcome.error else ''}; {len(stored)} rows "
                f"stored; {failures:.0f} failure(s) counted; lease {after.state}"
            )
            if mode == "canary":
                scenario.expect(
                    "canary: served and stored, failures counted",
                    outcome.result is not None
                    and outcome.result.frame.height == 30
                    and len(stored) == 30
                    and failures >= 1,
                    f"{outcome.error!r}"[:200],
                )
            else:
                error = outcome.error
                scenario.expect(
                    "strict: SchemaValidationError naming the registry URL, nothing stored, "
                    "lease failed and re-claimable",
                    isinstance(error, SchemaValidationError)
                    and registry_server.url in str(error)
                    and not stored
                    and failures >= 1
                    and after.state == "free"
                    and "SchemaValidationError" in (after.last_reason or ""),
                    f"{error!r}"[:200] + f"; {len(stored)} rows; lease {after.state}",
                )
        registry.close()
    for check in await standard_invariants(topology, workers, prefix):
        scenario.check(check)
