"""`seamless config validate`: exit codes 0/1/2, text and JSON output, no traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from seamless.cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.unit


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["config", "validate", *args])
    return result.exit_code, result.output


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "qmtl.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("QMTL_SEAMLESS_"):
            monkeypatch.delenv(var)


def test_prod_without_coordinator_exits_1(tmp_path: Path) -> None:
    path = _config(tmp_path, "profile: prod\nseamless: {}\n")
    code, out = _run("--config", path, "--target", "seamless", "--offline")
    assert code == 1
    line = next(line for line in out.splitlines() if "coordinator_url" in line)
    assert line.split()[:3] == ["seamless", "coordinator_url", "ERROR"]
    assert "Prod profile requires seamless.coordinator_url" in line


def test_dev_without_coordinator_exits_0_with_a_warning(tmp_path: Path) -> None:
    path = _config(tmp_path, "seamless:\n  profile: dev\n")
    code, out = _run("--config", path, "--target", "all")
    assert code == 0
    line = next(line for line in out.splitlines() if "coordinator_url" in line)
    assert line.split()[:3] == ["seamless", "coordinator_url", "WARN"]


def test_missing_section_exits_2(tmp_path: Path) -> None:
    path = _config(tmp_path, "gateway: {}\n")
    for target in ("seamless", "all"):
        code, out = _run("--config", path, "--target", target, "--offline")
        assert code == 2, target
        assert "no 'seamless' section" in out
    code, _ = _run("--config", path, "--target", "schema")
    assert code == 0


def test_env_override_shows_in_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, "seamless:\n  profile: dev\n")
    monkeypatch.setenv("QMTL_SEAMLESS_PROFILE", "prod")
    code, out = _run("--config", path, "--target", "seamless", "--offline")
    assert code == 1
    assert "prod (from env var QMTL_SEAMLESS_PROFILE)" in out


def test_json_output(tmp_path: Path) -> None:
    path = _config(tmp_path, "profile: prod\nseamless:\n  redis_dsn: redis://r:6379/0\n")
    code, out = _run("--config", path, "--target", "all", "--offline", "--json")
    assert code == 1
    document = json.loads(out)
    assert document["status"] == "error"
    assert set(document["results"]) == {"schema", "seamless"}
    url = document["results"]["seamless"]["coordinator_url"]
    assert url["severity"] == "ERROR"
    assert "Prod profile requires seamless.coordinator_url" in url["hint"]
    assert document["results"]["seamless"]["redis_dsn"]["severity"] == "WARN"


def test_json_ok_status(tmp_path: Path) -> None:
    path = _config(tmp_path, "seamless:\n  profile: dev\n")
    code, out = _run("--config", path, "--json", "--offline")
    assert code == 0
    assert json.loads(out)["status"] == "ok"


def test_bad_yaml_and_missing_file_are_clean_errors(tmp_path: Path) -> None:
    path = _config(tmp_path, "seamless:\n  profile: [dev\n")
    code, out = _run("--config", path)
    assert code == 1
    assert "not valid YAML at line" in out
    assert "Traceback" not in out
    code, out = _run("--config", str(tmp_path / "nope.yml"))
    assert code == 1
    assert "no such file" in out


def test_schema_target_alone_does_no_connectivity(tmp_path: Path) -> None:
    path = _config(tmp_path, "profile: prod\nseamless:\n  redis_dsn: redis://127.0.0.1:1/0\n")
    code, out = _run("--config", path, "--target", "schema")
    assert code == 0
    assert out.split()[:3] == ["schema", "seamless", "OK"]


def test_bad_target_is_a_usage_error(tmp_path: Path) -> None:
    path = _config(tmp_path, "seamless: {}\n")
    code, out = _run("--config", path, "--target", "gateway")
    assert code == 2
    assert "Traceback" not in out
