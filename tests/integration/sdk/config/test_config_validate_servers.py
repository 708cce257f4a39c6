"""`seamless config validate` against the real Redis, QuestDB and MinIO processes and the
real coordinator: each check OK when its server is up, ERROR when it is down (a free port
nothing listens on), WARN when --offline."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from sdk_client_servers import RealCoordinator
from seamless.cli import app
from typer.testing import CliRunner

from lab.servers import MinioServer, QuestDBServer, RedisServer, free_port

pytestmark = pytest.mark.integration

CHECKS = ("coordinator_url", "health", "redis_dsn", "questdb_dsn", "artifact_endpoint")


def _write(tmp_path: Path, section: Mapping[str, object]) -> Path:
    path = tmp_path / "qmtl.yml"
    path.write_text(json.dumps({"profile": "prod", "seamless": section}), encoding="utf-8")
    return path


def _validate(path: Path, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = CliRunner().invoke(
        app,
        ["config", "validate", "--config", str(path), "--target", "seamless", "--json", *extra],
    )
    document = json.loads(result.output)
    return result.exit_code, document["results"]["seamless"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("QMTL_SEAMLESS_"):
            monkeypatch.delenv(var)


@pytest.fixture
def up_section(
    redis_server: RedisServer,
    questdb_server: QuestDBServer,
    minio_server: MinioServer,
    real_coordinator: RealCoordinator,
) -> dict[str, object]:
    return {
        "coordinator_url": real_coordinator.url,
        "coordinator_token": real_coordinator.token,
        "redis_dsn": redis_server.url,
        "questdb_dsn": questdb_server.pg_dsn,
        "artifact_endpoint": minio_server.endpoint,
        "artifact_bucket": "seamless-artifacts",
        "health_backoff_seconds": 0.1,
    }


def test_everything_up_is_ok(tmp_path: Path, up_section: dict[str, object]) -> None:
    code, results = _validate(_write(tmp_path, up_section))
    assert code == 0, results
    for check in (*CHECKS, "auth", "artifact_bucket", "profile"):
        assert results[check]["severity"] == "OK", (check, results[check])
    assert "PING ok" in results["redis_dsn"]["hint"]
    assert "SELECT 1" in results["questdb_dsn"]["hint"]
    assert "/minio/health/live" in results["artifact_endpoint"]["hint"]
    assert "quest@" not in results["questdb_dsn"]["hint"]  # the DSN password is masked


@pytest.mark.parametrize("down", ["redis_dsn", "questdb_dsn", "artifact_endpoint", "health"])
def test_each_server_down_is_an_error(
    tmp_path: Path, up_section: dict[str, object], down: str
) -> None:
    port = free_port()  # nothing listens here
    section = dict(up_section)
    replacement = {
        "redis_dsn": ("redis_dsn", f"redis://127.0.0.1:{port}/0"),
        "questdb_dsn": ("questdb_dsn", f"postgresql://admin:quest@127.0.0.1:{port}/qdb"),
        "artifact_endpoint": ("artifact_endpoint", f"http://127.0.0.1:{port}"),
        "health": ("coordinator_url", f"http://127.0.0.1:{port}"),
    }
    key, value = replacement[down]
    section[key] = value
    code, results = _validate(_write(tmp_path, section))
    assert code == 1
    assert results[down]["severity"] == "ERROR", results[down]
    others = [c for c in CHECKS if c not in (down, key)]
    assert all(results[c]["severity"] == "OK" for c in others), results
    if down == "health":
        assert "after 3 attempt(s)" in results["health"]["hint"]


@pytest.mark.parametrize(
    ("token", "profile", "severity"),
    [
        ("wrong-token", "prod", "ERROR"),
        (None, "prod", "ERROR"),
        ("wrong-token", "dev", "WARN"),
    ],
)
def test_a_token_the_coordinator_refuses_is_reported(
    tmp_path: Path,
    up_section: dict[str, object],
    token: str | None,
    profile: str,
    severity: str,
) -> None:
    section = {**up_section, "profile": profile, "coordinator_token": token}
    code, results = _validate(_write(tmp_path, section))
    assert code == (1 if severity == "ERROR" else 0)
    assert results["health"]["severity"] == "OK"  # /healthz is public
    assert results["auth"]["severity"] == severity
    assert "HTTP 401" in results["auth"]["hint"]
    assert "QMTL_SEAMLESS_COORDINATOR_TOKEN" in results["auth"]["hint"]
    assert "wrong-token" not in json.dumps(results)  # the secret is never echoed


def test_offline_contacts_nothing_and_warns(tmp_path: Path) -> None:
    port = free_port()
    section = {
        "coordinator_url": f"http://127.0.0.1:{port}",
        "redis_dsn": f"redis://127.0.0.1:{port}/0",
        "questdb_dsn": f"postgresql://admin:quest@127.0.0.1:{port}/qdb",
        "artifact_endpoint": f"http://127.0.0.1:{port}",
        "artifact_bucket": "seamless-artifacts",
    }
    code, results = _validate(_write(tmp_path, section), "--offline")
    assert code == 0
    for check in ("health", "redis_dsn", "questdb_dsn", "artifact_endpoint"):
        assert results[check]["severity"] == "WARN"
        assert "offline" in results[check]["hint"]


def test_console_script_text_output(tmp_path: Path, up_section: dict[str, object]) -> None:
    """The installed `seamless` command, as a user runs it."""
    section = dict(up_section)
    section["redis_dsn"] = f"redis://127.0.0.1:{free_port()}/0"
    path = _write(tmp_path, section)
    cli = str(Path(sys.executable).with_name("seamless"))
    done = subprocess.run(
        [cli, "config", "validate", "--config", str(path), "--target", "all"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = {tuple(line.split()[:3]) for line in done.stdout.splitlines()}
    assert ("seamless", "redis_dsn", "ERROR") in lines
    assert ("seamless", "questdb_dsn", "OK") in lines
    assert ("seamless", "health", "OK") in lines
