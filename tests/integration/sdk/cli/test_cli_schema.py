"""`seamless schema register|show|check|promote|rollback|audit` against a real registry
(Apicurio Registry, lab/registry.py), with the canary failure count read from a real
/metrics endpoint."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from seamless.cli import app
from seamless.data.bars import BAR_SCHEMA
from seamless.data.schema_registry import BarSchema, FieldSpec
from seamless.metrics import SeamlessMetrics
from typer.testing import CliRunner

from lab.registry import SchemaRegistryServer
from lab.servers import free_port

pytestmark = pytest.mark.integration

BARS = BarSchema.from_dtypes(BAR_SCHEMA)


@pytest.fixture
def metrics() -> Iterator[tuple[SeamlessMetrics, str]]:
    m = SeamlessMetrics(CollectorRegistry())
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=m.registry)
    yield m, f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    thread.join(5)


def _schema_file(tmp_path: Path, schema: BarSchema, name: str) -> str:
    path = tmp_path / name
    path.write_text(schema.to_json(), encoding="utf-8")
    return str(path)


def test_canary_to_strict_and_back(
    schema_registry_server: SchemaRegistryServer,
    metrics: tuple[SeamlessMetrics, str],
    tmp_path: Path,
) -> None:
    m, metrics_url = metrics
    subject = f"cli.bars-{secrets.token_hex(3)}"
    audit = str(tmp_path / "audit.jsonl")
    common = ["--registry", schema_registry_server.url]
    files = ["--audit-file", audit]
    run = CliRunner().invoke

    v1 = _schema_file(tmp_path, BARS, "v1.json")
    got = run(app, ["schema", "register", subject, "--schema", v1, *common, *files,
                    "--metrics-url", metrics_url, "--note", "v1 canary"])  # fmt: skip
    assert got.exit_code == 0, got.output
    assert "version 1" in got.output and "sha256:" in got.output

    removed = BarSchema(tuple(f for f in BARS.fields if f.name != "volume"))
    v2_bad = _schema_file(tmp_path, removed, "bad.json")
    got = run(app, ["schema", "check", subject, "--schema", v2_bad, *common])
    assert got.exit_code == 1 and "field 'volume' removed" in got.output
    assert "Traceback" not in got.output
    got = run(app, ["schema", "register", subject, "--schema", v2_bad, *common, *files])
    assert got.exit_code == 1 and "breaks version 1" in got.output

    # failures during the window: promotion refused, then allowed with --force
    m.schema_validation_failures_total.labels(subject=subject, mode="canary").inc(3)
    promote = ["schema", "promote", subject, *common, *files, "--note", "go strict",
               "--min-window-hours", "0", "--metrics-url", metrics_url]  # fmt: skip
    got = run(app, promote)
    assert got.exit_code == 1 and "3 canary failure(s) in the window" in got.output
    got = run(app, [*promote, "--force"])
    assert got.exit_code == 0 and "promoted to strict" in got.output, got.output

    optional = BarSchema((*BARS.fields, FieldSpec("vwap", "number", required=False)))
    v2 = _schema_file(tmp_path, optional, "v2.json")
    got = run(app, ["schema", "register", subject, "--schema", v2, *common, *files])
    assert got.exit_code == 0 and "version 2" in got.output, got.output
    got = run(app, ["schema", "show", subject, *common])
    assert got.exit_code == 0 and "vwap" in got.output and "version 2" in got.output

    got = run(app, ["schema", "rollback", subject, *common, *files, "--tombstone", "2",
                    "--note", "vwap broke a consumer"])  # fmt: skip
    assert got.exit_code == 0 and "approved version 1" in got.output, got.output

    records = [json.loads(line) for line in Path(audit).read_text().splitlines()]
    assert [r["action"] for r in records] == ["register", "promote", "register", "rollback"]
    assert records[1]["mode"] == "strict" and records[1]["forced"] is True
    assert records[1]["canary_failures"] == 3 and records[1]["bundle_sha"].startswith("sha256:")
    assert records[-1]["mode"] == "canary"
    got = run(app, ["schema", "audit", subject, *files])
    assert got.exit_code == 0 and "rollback" in got.output


def test_clean_window_promotes_without_force(
    schema_registry_server: SchemaRegistryServer,
    metrics: tuple[SeamlessMetrics, str],
    tmp_path: Path,
) -> None:
    _, metrics_url = metrics
    subject = f"cli.clean-{secrets.token_hex(3)}"
    common = ["--registry", schema_registry_server.url, "--audit-file", str(tmp_path / "a")]
    v1 = _schema_file(tmp_path, BARS, "v1.json")
    run = CliRunner().invoke
    assert run(app, ["schema", "register", subject, "--schema", v1, *common]).exit_code == 0
    promote = ["schema", "promote", subject, *common, "--note", "n", "--min-window-hours", "0"]
    got = run(app, promote)
    assert got.exit_code == 1 and "no --metrics-url" in got.output
    got = run(app, [*promote, "--metrics-url", metrics_url])
    assert got.exit_code == 0, got.output


def test_unreachable_registry_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    got = CliRunner().invoke(app, ["schema", "show", "seamless.bars", "--registry", url])
    assert got.exit_code == 1
    assert f"schema registry {url} unreachable" in got.output and "Traceback" not in got.output
