"""The load gate against the running partial stack, pointed at it through its outputs file.

The stack's outputs are written as `pulumi stack output --json --show-secrets` writes them
(the declarations driver has the program's outputs, secrets unwrapped) and the CI profile
runs on them with `--target-file`: the gate reads `hostSdkConfig` (the coordinator on
127.0.0.1:8090 with the exported worker token, QuestDB's PostgreSQL wire on 8812; ILP over
HTTP on the DSN host's 9000, QuestDB's published HTTP port). The stack is the session's one
(conftest.py), shared with the engine tests and the chaos scenarios.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.docker_stack import DockerStack
from loadtest.run import LoadRun, run_profile
from loadtest.target import load_target

# 1800 s: the first test here may bring up the session's stack (and build its images)
pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]

RUN_TIME = "40s"  # the CI profile's own run time


def _explain(run: LoadRun) -> str:
    return f"exit {run.exit_code}; locust output tail:\n" + "\n".join(run.output.splitlines()[-40:])


def test_ci_load_gate_passes_against_the_stack_outputs(
    stack: DockerStack, declared: dict[str, Any], tmp_path: Path
) -> None:
    outputs = tmp_path / "partial-outputs.json"
    fd = os.open(outputs, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds tokens
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(declared["outputs"], handle, indent=2)
    target = load_target(outputs, env={})
    host = declared["outputs"]["hostSdkConfig"]["seamless"]
    assert target.coordinator_url == host["coordinator_url"] == "http://127.0.0.1:8090"
    assert target.questdb_ilp == "http::addr=127.0.0.1:9000;"

    run = run_profile("ci", outputs, tmp_path / "ci.json", run_time=RUN_TIME, timeout_s=300)
    report: dict[str, Any] | None = run.report
    assert run.exit_code == 0, _explain(run)
    assert report is not None and report["gate"]["passed"], _explain(run)
    assert report["preset"] == "baseline"
    assert "SLA gate PASSED" in run.output
    phases = report["phases"]
    for name in ("total", "storage_wait", "backfill_wait", "lease.claim", "lease.complete"):
        assert phases[name]["requests"] > 0, name
        assert phases[name]["failures"] == 0, (name, phases[name]["errors"])
    summary = {
        name: {k: phases[name].get(k) for k in ("requests", "p50_ms", "p95_ms", "p99_ms")}
        for name in sorted(phases)
    }
    print(
        f"load gate on the partial stack: {report['fetches']} fetches, "
        f"{report['rps']:.1f} req/s; phases {json.dumps(summary)}",
        file=sys.stderr,
    )
    assert report["fetches"] > 300
