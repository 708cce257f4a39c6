"""The catalog of bad configs (bad_configs.yaml): every error names the key, the value's
source (file or env var) and the valid form, both from the loader and from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from seamless.cli import app
from seamless.config.loading import load_config
from seamless.errors import ConfigError
from typer.testing import CliRunner

pytestmark = pytest.mark.unit

CATALOG: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "bad_configs.yaml").read_text(encoding="utf-8")
)


def test_catalog_is_large_and_names_are_unique() -> None:
    names = [case["name"] for case in CATALOG]
    assert len(names) >= 20
    assert len(set(names)) == len(names)


# Cases too big to keep in the catalog file, built on demand.
GENERATED: dict[str, str] = {
    "hostname-2mb": "seamless:\n  coordinator_url: http://" + "h" * 2_000_000 + ":8080\n",
    "nested-5000": "seamless:\n  coordinator_url: " + "[" * 5000 + "]" * 5000 + "\n",
}


def _write_case(case: dict[str, Any], tmp_path: Path) -> Path:
    if "generate" in case:
        path = tmp_path / "config.yml"
        path.write_text(GENERATED[case["generate"]], encoding="utf-8")
        return path
    for rel, text in (case.get("files") or {}).items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    path = tmp_path / "config.yml"
    path.write_text(case["config"], encoding="utf-8")
    return path


def _expected_source(case: dict[str, Any], path: Path) -> str:
    return str(path) if case["source"] == "file" else f"env var {case['source']}"


@pytest.mark.parametrize("case", CATALOG, ids=[c["name"] for c in CATALOG])
def test_loader_names_key_source_and_valid_form(case: dict[str, Any], tmp_path: Path) -> None:
    path = _write_case(case, tmp_path)
    env = {str(k): str(v) for k, v in (case.get("env") or {}).items()}
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    message = str(caught.value)
    assert len(message) < 2000, "a message must not echo a huge value back"
    assert case["key"] in message
    assert _expected_source(case, path) in message
    assert case["expected"] in message


@pytest.mark.parametrize("case", CATALOG, ids=[c["name"] for c in CATALOG])
def test_cli_reports_it_without_a_trace(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_case(case, tmp_path)
    for var, value in (case.get("env") or {}).items():
        monkeypatch.setenv(str(var), str(value))
    result = CliRunner().invoke(
        app, ["config", "validate", "--config", str(path), "--target", "all", "--offline"]
    )
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert len(result.output) < 10_000
    error_lines = [line for line in result.output.splitlines() if "  ERROR  " in line]
    assert any(
        case["key"] in line and _expected_source(case, path) in line and case["expected"] in line
        for line in error_lines
    ), result.output


def test_password_in_coordinator_url_is_masked_everywhere(tmp_path: Path) -> None:
    """A password inside coordinator_url is masked like a DSN's, on OK and ERROR lines."""
    path = tmp_path / "config.yml"
    path.write_text(
        "seamless:\n"
        "  coordinator_url: http://ops:hunter2-secret@127.0.0.1:9/\n"
        "  redis_dsn: redis://:hunter2-secret@127.0.0.1:9/0\n"
        "  questdb_dsn: postgresql://admin:hunter2-secret@127.0.0.1:9/qdb\n"
        "  health_attempts: 0\n",
        encoding="utf-8",
    )
    for offline in (True, False):
        args = ["config", "validate", "--config", str(path), "--target", "all"]
        result = CliRunner().invoke(app, [*args, "--offline"] if offline else args)
        assert "hunter2" not in result.output, result.output
        assert "ops:***@127.0.0.1" in result.output, result.output


def test_bad_url_with_password_is_masked_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("seamless:\n  coordinator_url: 'http://ops:s3cret@a b:8080'\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "s3cret" not in str(caught.value)
    assert "seamless.coordinator_url" in str(caught.value)
