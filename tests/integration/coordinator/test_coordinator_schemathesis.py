"""schemathesis against the live service's own OpenAPI document: at least 1,000 generated
cases (valid and invalid), and not one 5xx, checked both by schemathesis and by the
service's own request counter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lab.coordinator_process import CoordinatorServer

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def _server_errors(server: CoordinatorServer) -> float:
    text = httpx.get(server.metrics_url, timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("seamless_coordinator_requests_total{") and 'status="5' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_schemathesis_finds_no_server_error(
    coordinator_server: CoordinatorServer, tmp_path: Path
) -> None:
    report = tmp_path / "schemathesis.json"
    command = [
        str(SCHEMATHESIS), "run", f"{coordinator_server.url}/openapi.json",
        "--checks", "all",
        "--header", f"Authorization: Bearer {coordinator_server.token}",
        "--max-examples", "200",
        "--seed", "4",
        "--no-color",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        "--request-timeout", "10",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=240)
    output = run.stdout[-8000:] + run.stderr[-2000:]
    assert run.returncode == 0, output
    summary = json.loads(report.read_text())
    generated = summary["test_cases"]["generated"]
    print(f"schemathesis generated {generated} cases")
    assert generated >= 1000, summary["test_cases"]
    assert summary["failures"] == [] and summary["errors"] == []
    assert _server_errors(coordinator_server) == 0.0, coordinator_server.log_tail()
