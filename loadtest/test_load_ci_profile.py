"""The CI load profile against the real local data plane (Redis, QuestDB, the coordinator
as processes), run as a locust subprocess; and proof that the gate fails a run whose budget
is tightened below what this machine achieves."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.coordinator_process import CoordinatorServer
from lab.servers import QuestDBServer, RedisServer
from loadtest.local import target_for
from loadtest.run import LoadRun, run_profile

pytestmark = [pytest.mark.load, pytest.mark.timeout(400)]

CI_RUN_TIME = "40s"


@pytest.fixture(scope="module")
def load_coordinator(redis_server: RedisServer) -> Iterator[CoordinatorServer]:
    prefix = f"seamless-load-{secrets.token_hex(4)}:"
    with CoordinatorServer(redis_server.url, key_prefix=prefix, log_level="warning") as server:
        yield server


@pytest.fixture(scope="module")
def target_file(
    tmp_path_factory: pytest.TempPathFactory,
    load_coordinator: CoordinatorServer,
    questdb_server: QuestDBServer,
) -> Path:
    directory = tmp_path_factory.mktemp("load")
    return target_for(load_coordinator, questdb_server).write(directory / "target.json")


@pytest.fixture(scope="module")
def ci_run(target_file: Path) -> LoadRun:
    return run_profile("ci", target_file, target_file.parent / "ci.json", run_time=CI_RUN_TIME)


def _explain(run: LoadRun) -> str:
    return f"exit {run.exit_code}; locust output tail:\n" + "\n".join(run.output.splitlines()[-40:])


def test_ci_profile_passes_the_baseline_gate(ci_run: LoadRun) -> None:
    assert ci_run.exit_code == 0, _explain(ci_run)
    report: dict[str, Any] | None = ci_run.report
    assert report is not None and report["gate"]["passed"], _explain(ci_run)
    assert report["preset"] == "baseline"
    phases = report["phases"]
    # every source and every lease operation really ran, with zero failures
    for name in (
        "total",
        "storage_wait",
        "backfill_wait",
        "total:cache",
        "lease.claim",
        "lease.renew",
        "lease.complete",
        "lease.fail",
    ):
        assert phases[name]["requests"] > 0, name
        assert phases[name]["failures"] == 0, (name, phases[name]["errors"])
    assert report["fetches"] > 500
    assert report["rps"] > 50
    # cache hits are sub-millisecond: the recorder keeps what locust's buckets would round
    assert phases["total:cache"]["p50_ms"] < 1.0
    assert "SLA gate PASSED" in ci_run.output


def test_gate_fails_when_a_budget_is_tightened_below_what_the_machine_achieves(
    ci_run: LoadRun, target_file: Path, tmp_path: Path
) -> None:
    assert ci_run.report is not None
    achieved = ci_run.report["phases"]["storage_wait"]["p95_ms"]
    tight = round(achieved / 20, 3)  # far below what this machine just achieved
    targets = tmp_path / "tight.yaml"
    targets.write_text(f"phases:\n  storage_wait: {{p95_ms: {tight}}}\n")
    run = run_profile(
        "ci",
        target_file,
        tmp_path / "tight.json",
        run_time="15s",
        extra=["--sla-targets", str(targets)],
    )
    assert run.exit_code != 0, _explain(run)
    assert run.report is not None and not run.report["gate"]["passed"]
    assert "SLA gate FAILED" in run.output
    breaches = [c for c in run.report["gate"]["checks"] if not c["passed"]]
    (breach,) = [c for c in breaches if c["limit"] == tight]
    assert (breach["subject"], breach["metric"]) == ("storage_wait", "p95")
    assert breach["observed"] > tight
    # the printed message names the phase, the budget, where it came from and the margin
    assert breach["message"] in run.output
    assert breach["message"].startswith("storage_wait p95 ")
    assert f"(target file {targets}): over by" in breach["message"]


def test_a_run_with_no_requests_fails(target_file: Path, tmp_path: Path) -> None:
    # every user class filtered out by a tag no task has: locust runs, nothing is sent
    run = run_profile(
        "ci", target_file, tmp_path / "none.json", run_time="3s", extra=["--tags", "nothing"]
    )
    assert run.exit_code != 0, _explain(run)
    assert "run requests 0 requests < minimum 1" in run.output
