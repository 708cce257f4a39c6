"""validate_seamless / validate_schema as plain functions on values (what the Pulumi
program calls on stack config): profile rules, offline mode, output formats."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seamless.config.model import FIELDS
from seamless.config.validation import (
    CheckResult,
    first_error_message,
    format_results,
    results_as_json,
    validate_schema,
    validate_seamless,
)

pytestmark = pytest.mark.unit

PROD_FULL = {
    "profile": "prod",
    "coordinator_url": "http://coord:8080",
    "redis_dsn": "redis://redis:6379/3",
    "questdb_dsn": "postgresql://admin:quest@questdb:8812/qdb",
    "artifact_endpoint": "http://minio:9000",
    "artifact_bucket": "seamless-artifacts",
}


def _by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def _closed_port() -> int:
    # Bound but never listening: connecting is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_prod_without_coordinator_url_is_qmtls_error() -> None:
    results = validate_seamless({"profile": "prod"}, offline=True)
    url = _by_check(results)["coordinator_url"]
    assert url.severity == "ERROR"
    assert "Prod profile requires seamless.coordinator_url" in url.hint
    message = first_error_message(results)
    assert message is not None
    assert "Prod profile requires seamless.coordinator_url" in message


def test_prod_requires_the_data_plane() -> None:
    checks = _by_check(validate_seamless({"profile": "prod"}, offline=True))
    for key in ("redis_dsn", "questdb_dsn", "artifact_endpoint", "artifact_bucket"):
        assert checks[key].severity == "ERROR", key
        assert f"Prod profile requires seamless.{key}" in checks[key].hint


def test_dev_without_anything_is_a_warning_only() -> None:
    results = validate_seamless({"profile": "dev"}, offline=False)
    checks = _by_check(results)
    assert checks["coordinator_url"].severity == "WARN"
    assert "in-memory" in checks["coordinator_url"].hint
    assert first_error_message(results) is None
    assert {r.severity for r in results} <= {"OK", "WARN"}


def test_offline_turns_connectivity_into_warnings_without_contacting() -> None:
    results = validate_seamless(PROD_FULL, offline=True)
    checks = _by_check(results)
    for key in ("redis_dsn", "questdb_dsn", "artifact_endpoint", "health"):
        assert checks[key].severity == "WARN", key
        assert "offline" in checks[key].hint
    assert checks["artifact_bucket"].severity == "OK"
    assert first_error_message(results) is None


def test_online_unreachable_servers_are_errors() -> None:
    port = _closed_port()
    section = {
        **PROD_FULL,
        "coordinator_url": f"http://127.0.0.1:{port}",
        "redis_dsn": f"redis://127.0.0.1:{port}/0",
        "questdb_dsn": f"postgresql://admin:quest@127.0.0.1:{port}/qdb",
        "artifact_endpoint": f"http://127.0.0.1:{port}",
        "health_attempts": 2,
        "health_backoff_seconds": 0,
    }
    checks = _by_check(validate_seamless(section, offline=False, connect_timeout=1.0))
    for key in ("redis_dsn", "questdb_dsn", "artifact_endpoint"):
        assert checks[key].severity == "ERROR", key
        assert "unreachable" in checks[key].hint
        assert "quest@" not in checks[key].hint  # password masked
    assert checks["health"].severity == "ERROR"
    assert "after 2 attempt(s)" in checks["health"].hint


def test_dev_unreachable_coordinator_is_a_warning() -> None:
    port = _closed_port()
    section = {"profile": "dev", "coordinator_url": f"http://127.0.0.1:{port}"}
    health = _by_check(validate_seamless(section, offline=False))["health"]
    assert health.severity == "WARN"
    assert "after 1 attempt(s)" in health.hint
    assert "fall back to the in-memory coordinator" in health.hint


def test_env_overrides_apply_when_given_and_are_named() -> None:
    env = {"QMTL_SEAMLESS_PROFILE": "prod", "QMTL_SEAMLESS_COORDINATOR_URL": "http://c:1"}
    checks = _by_check(validate_seamless({"profile": "dev"}, offline=True, env=env))
    assert checks["profile"].hint == "prod (from env var QMTL_SEAMLESS_PROFILE)"
    assert "env var QMTL_SEAMLESS_COORDINATOR_URL" in checks["coordinator_url"].hint
    # No env given (e.g. Pulumi stack config): nothing is read from the process env.
    checks = _by_check(validate_seamless({"profile": "dev"}, offline=True, source="stack"))
    assert checks["profile"].hint == "dev (from stack)"


def test_schema_errors_and_rules_both_report() -> None:
    results = validate_seamless(
        {"profile": "prod", "redis_dsn": "http://nope", "colour": "x"}, offline=True
    )
    checks = _by_check(results)
    assert checks["redis_dsn"].severity == "ERROR"
    assert "redis:// or rediss://" in checks["redis_dsn"].hint
    assert checks["colour"].severity == "ERROR"
    assert "unknown key" in checks["colour"].hint
    assert "Prod profile requires" in checks["questdb_dsn"].hint


def test_relative_presets_file_uses_config_dir(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "sla_presets:\n  quick:\n    policy: {total_deadline_ms: 5}\n"
        "conformance_presets:\n  any: {}\n"
    )
    section = {"presets_file": "p.yaml", "sla_preset": "quick", "conformance_preset": "any"}
    ok = _by_check(validate_seamless(section, offline=True, config_dir=tmp_path))
    assert ok["sla_preset"].severity == "OK"
    assert str(tmp_path / "p.yaml") in ok["sla_preset"].hint
    bad = _by_check(validate_seamless(section, offline=True, config_dir=tmp_path / "x"))
    assert bad["presets_file"].severity == "ERROR"


def test_schema_target_flags_unknown_sections_with_did_you_mean() -> None:
    results = validate_schema({"seamles": {}, "gateway": {}}, source="f.yml")
    checks = _by_check(results)
    assert checks["section seamles"].severity == "WARN"
    assert "did you mean 'seamless'" in checks["section seamles"].hint
    assert "section gateway" not in checks


def test_schema_target_ok_line_when_valid() -> None:
    results = validate_schema({"profile": "prod", "seamless": {"redis_dsn": "redis://r/0"}})
    assert [r.severity for r in results] == ["OK"]
    assert results[0].target == "schema"


def test_format_results_one_aligned_line_per_check() -> None:
    results = [
        CheckResult("seamless", "redis_dsn", "OK", "PING ok"),
        CheckResult("seamless", "health", "ERROR", "down"),
    ]
    lines = format_results(results).splitlines()
    assert lines == [
        "seamless  redis_dsn  OK     PING ok",
        "seamless  health     ERROR  down",
    ]
    assert format_results([]) == ""


def test_json_shape() -> None:
    results = [
        CheckResult("schema", "seamless", "OK", "fine"),
        CheckResult("seamless", "health", "ERROR", "down"),
    ]
    assert results_as_json(results) == {
        "status": "error",
        "results": {
            "schema": {"seamless": {"severity": "OK", "hint": "fine"}},
            "seamless": {"health": {"severity": "ERROR", "hint": "down"}},
        },
    }
    assert results_as_json(results[:1])["status"] == "ok"
    assert first_error_message(results) == "seamless.health: down"
    assert first_error_message(results[:1]) is None


_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["prod", "dev", "http://c:1", "redis://r:1/0", "baseline", "x"]),
)
_value = st.one_of(
    _scalar,
    st.lists(_scalar, max_size=3),
    st.dictionaries(st.text(max_size=5), _scalar, max_size=2),
)
_key = st.one_of(st.sampled_from(list(FIELDS)), st.text(min_size=1, max_size=12))


@given(section=st.dictionaries(_key, _value, max_size=8))
def test_any_section_gives_results_never_a_crash(section: dict[str, object]) -> None:
    """Stack config is arbitrary user input: every problem is a result line naming its key."""
    results = validate_seamless(section, offline=True, source="stack")
    assert results
    for r in results:
        assert r.severity in ("OK", "WARN", "ERROR")
        if r.severity == "ERROR" and r.check in section and r.check != "profile":
            assert f"seamless.{r.check}" in r.hint


def test_a_presets_file_path_with_a_nul_byte_is_an_error_naming_the_key() -> None:
    # Found by the property test above: the OS refuses such a path with ValueError.
    results = validate_seamless({"presets_file": "\x00"}, offline=True, source="stack")
    errors = [r for r in results if r.check == "presets_file" and r.severity == "ERROR"]
    assert errors and "seamless.presets_file" in errors[0].hint
