"""Scenario 14: the fetcher returns bars of the wrong shape."""

from __future__ import annotations

import pytest
from seamless.data.conformance import ConformancePipeline, ConformanceReport
from seamless.errors import ConformancePipelineError
from seamless.testing import SyntheticFetcher

from chaos.conftest import ScenarioRun
from chaos.topology import ChaosTopology
from chaos.workload import INTERVAL, make_worker, shard_span, standard_invariants
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]

FAULTS = {"missing_column": "missing_column", "string_prices": "dtype_cast"}


@pytest.mark.scenario(
    14,
    "Schema mismatch from the fetcher",
    fault="the fetcher drops the `volume` column (missing column), or sends `close` as text "
    "(wrong dtype)",
    expected="strict conformance: the fetch raises ConformancePipelineError naming the flag, "
    "nothing of the bad batch is stored, the shard's lease is failed (re-claimable); "
    "partial_ok: the normalised bars are stored and served with the flags in the report",
)
async def test_schema_mismatch_blocks_unless_partial_ok(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s14")
    start, end = shard_span(1)
    workers = []
    for fault, flag in FAULTS.items():
        strict = make_worker(
            topology,
            f"s14-strict-{fault}",
            store=topology.store(prefix),
            fetcher=SyntheticFetcher(seed=7, schema_faults=frozenset({fault})),
        )
        lenient = make_worker(
            topology,
            f"s14-lenient-{fault}",
            store=topology.store(prefix),
            fetcher=SyntheticFetcher(seed=7, schema_faults=frozenset({fault})),
            conformance=ConformancePipeline(partial_ok=True),
        )
        workers += [strict, lenient]
        node = f"s14-{fault.replace('_', '-')}"
        blocked = await strict.fetch(start, end, node)
        stored_after_block = [r for r in topology.stored_rows(prefix) if r[0] == node]
        key = f"{node}:{INTERVAL}:{start}:{end}::"
        after_block = (await topology.inspect([key]))[key]
        error = blocked.error
        flags = (
            dict(error.report.flags)
            if isinstance(error, ConformancePipelineError)
            and isinstance(error.report, ConformanceReport)
            else {}
        )
        scenario.observe(f"{fault}, strict: {type(error).__name__}: {str(error)[:160]}")
        scenario.expect(
            f"{fault}: strict fetch raises ConformancePipelineError flagging {flag}",
            isinstance(error, ConformancePipelineError) and flags.get(flag, 0) > 0,
            f"{error!r}"[:200],
        )
        scenario.expect(
            f"{fault}: nothing of the bad batch stored; the lease failed, re-claimable",
            not stored_after_block
            and after_block.state == "free"
            and after_block.attempts == 1
            and "ConformancePipelineError" in (after_block.last_reason or ""),
            f"{len(stored_after_block)} rows; key {after_block.state}, attempts "
            f"{after_block.attempts}, reason {(after_block.last_reason or '')[:80]!r}",
        )
        served = await lenient.fetch(start, end, node)
        backfill = served.result.metadata.backfill if served.result else None
        report = backfill.conformance if backfill else None
        scenario.observe(
            f"{fault}, partial_ok: {served.result and served.result.frame.height} bars, "
            f"flags {report and dict(report.flags)}"
        )
        scenario.expect(
            f"{fault}: partial_ok stores and serves the normalised bars with the flag reported",
            served.result is not None
            and served.result.frame.height == 30
            and report is not None
            and report.flags.get(flag, 0) > 0
            and strict.counter("backfill_failure_total") == 1,
            f"{served.error!r}"
            if served.result is None
            else f"flags {dict(report.flags) if report else {}}",
        )
    for check in await standard_invariants(topology, workers, prefix):
        scenario.check(check)
