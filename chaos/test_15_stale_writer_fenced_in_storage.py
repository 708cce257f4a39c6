"""Scenario 15: a paused stale writer writes different bars after the new holder completed."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from seamless.coordination.interface import Granted
from seamless.testing import SyntheticFetcher

from chaos.conftest import ScenarioRun, wait_for
from chaos.topology import ChaosTopology
from chaos.workload import INTERVAL, chaos_backfill, make_worker, shard_span, standard_invariants
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]

LEASE_MS = 1_500
WRITER = Path(__file__).with_name("stale_writer.py")
MODES = ("before-write", "after-check")  # shard 0, shard 1


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.scenario(
    15,
    "Stale writer paused past its lease, fenced in storage",
    fault="two stale writer processes hold the leases of two shards, fetch different bars "
    "(another seed), and are SIGSTOPped: one just before its write, one between the store's "
    f"fence check and the send; their {LEASE_MS} ms leases run out, B re-claims and "
    "completes both shards, then the writers are SIGCONTed and write",
    expected="the writer paused before its write is refused (WriteFenced: B's newer token "
    "is stored); the one paused after the check lands its rows, but reads serve B's bars "
    "(the highest token per bar): B's bars are what is served for both shards",
)
async def test_stale_writer_is_fenced_in_storage(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s15")
    node = "s15-node"
    store = topology.store(prefix)
    await store.ensure_table()
    a = topology.client("s15-a")
    writers: list[subprocess.Popen[str]] = []
    tokens: dict[str, int] = {}
    try:
        for shard_no, mode in enumerate(MODES):
            start, end = shard_span(1, shard_no)
            claimed = await a.claim(f"{node}:{INTERVAL}:{start}:{end}::", LEASE_MS)
            assert isinstance(claimed, Granted)
            tokens[mode] = claimed.lease.token
            spec = {
                "pg_dsn": store.pg_dsn,
                "ilp_conf": store.ilp_conf,
                "prefix": prefix,
                "node": node,
                "interval": INTERVAL,
                "start": start,
                "end": end,
                "token": claimed.lease.token,
                "seed": 1,
                "mode": mode,
            }
            writers.append(
                subprocess.Popen(
                    [sys.executable, str(WRITER), json.dumps(spec)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for writer in writers:
            assert writer.stdout is not None
            line = await asyncio.to_thread(writer.stdout.readline)
            assert json.loads(line)["paused"] == writer.pid, line
            await wait_for(partial(_stopped, writer.pid), timeout=10, what="writer stopped")

        # B finds both shards held, waits the leases out, re-claims and completes them
        b = make_worker(topology, "s15-b", store=topology.store(prefix), backfill=chaos_backfill())
        start, end = shard_span(2)
        b_request = await asyncio.wait_for(b.fetch(start, end, node), timeout=30)
        b_report = b_request.result.metadata.backfill if b_request.result else None
        scenario.observe(
            f"B: completed {b_report and b_report.completed}; error {b_request.error!r}"
        )

        outcomes = {}
        for mode, writer in zip(MODES, writers, strict=True):
            writer.send_signal(signal.SIGCONT)
            out, _ = await asyncio.to_thread(writer.communicate, timeout=30)
            outcomes[mode] = json.loads(out.strip().splitlines()[-1])
        scenario.observe(f"stale writers (tokens {tokens}): {outcomes}")
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.send_signal(signal.SIGCONT)
                writer.kill()
                writer.wait(timeout=10)

    b_tokens = {e.key: e.token for e in topology.audit.of("claim", "granted") if e.worker == b.name}
    scenario.expect(
        "B re-claimed both shards with higher tokens and completed them",
        b_report is not None
        and len(b_report.completed) == 2
        and len(b_tokens) == 2
        and all((t or 0) > max(tokens.values()) for t in b_tokens.values()),
        f"B tokens {b_tokens}",
    )
    scenario.expect(
        "the writer paused before its write is refused by the store",
        outcomes.get("before-write", {}).get("result") == "fenced",
        f"{outcomes.get('before-write')}",
    )
    scenario.expect(
        "the writer paused after the fence check lands its rows anyway",
        outcomes.get("after-check", {}).get("result") == "written",
        f"{outcomes.get('after-check')}",
    )
    expected = await SyntheticFetcher(seed=7).fetch(start, end, node_id=node, interval=INTERVAL)
    stale = await SyntheticFetcher(seed=1).fetch(start, end, node_id=node, interval=INTERVAL)
    direct = topology.direct_store(prefix)
    served = await direct.read(node, INTERVAL, start, end)
    await direct.aclose()
    again = await b.fetch(start, end, node)
    scenario.expect(
        "B's bars are what is served, from the store and through the provider",
        served.equals(expected)
        and not served.equals(stale)
        and again.result is not None
        and again.result.frame.equals(expected)
        and again.result.metadata.sources == ["storage"],
        f"served {served.height} bars; equal to B's: {served.equals(expected)}",
    )
    rows = topology.stored_token_rows(prefix)
    by_token: dict[int | None, int] = {}
    for row in rows:
        by_token[row[3]] = by_token.get(row[3], 0) + 1
    scenario.observe(f"stored rows per token: {by_token}")
    scenario.expect(
        "the refused writer stored nothing; the landed one is superseded, not served",
        tokens["before-write"] not in by_token and by_token.get(tokens["after-check"]) == 30,
        f"{by_token}",
    )
    for check in await standard_invariants(topology, [b], prefix):
        scenario.check(check)
