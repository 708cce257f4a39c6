"""The `seamless` section model: QMTL keys and defaults, env overrides (env wins),
provenance of each value, QMTL's top-level profile, secrets kept out of messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seamless.config.loading import load_config, load_section
from seamless.config.model import (
    DEFAULT_SOURCE,
    ENV_VARS,
    FIELDS,
    SeamlessConfig,
    mask_url_password,
    resolve_section,
    unknown_env_vars,
)
from seamless.errors import ConfigError, ConfigSectionMissing

pytestmark = pytest.mark.unit

QMTL_KEYS = {
    "coordinator_url": "QMTL_SEAMLESS_COORDINATOR_URL",
    "redis_dsn": "QMTL_SEAMLESS_REDIS_DSN",
    "questdb_dsn": "QMTL_SEAMLESS_QUESTDB_DSN",
    "artifact_endpoint": "QMTL_SEAMLESS_ARTIFACT_ENDPOINT",
    "artifact_bucket": "QMTL_SEAMLESS_ARTIFACT_BUCKET",
    "artifacts_enabled": "QMTL_SEAMLESS_ARTIFACTS",
    "artifact_dir": "QMTL_SEAMLESS_ARTIFACT_DIR",
    "fingerprint_mode": "QMTL_SEAMLESS_FP_MODE",
    "publish_fingerprint": "QMTL_SEAMLESS_PUBLISH_FP",
    "preview_fingerprint": "QMTL_SEAMLESS_PREVIEW_FP",
    "early_fingerprint": "QMTL_SEAMLESS_EARLY_FP",
    "sla_preset": "QMTL_SEAMLESS_SLA_PRESET",
    "conformance_preset": "QMTL_SEAMLESS_CONFORMANCE_PRESET",
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qmtl.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_qmtl_key_and_env_var_is_modelled() -> None:
    for key, var in QMTL_KEYS.items():
        assert key in FIELDS
        assert ENV_VARS[key] == var
    assert "presets_file" in FIELDS
    assert "profile" in FIELDS


def test_defaults_are_qmtls() -> None:
    settings = SeamlessConfig()
    assert settings.profile == "dev"
    assert settings.artifacts_enabled is False
    assert settings.fingerprint_mode == "canonical"
    assert settings.publish_fingerprint is True
    assert settings.preview_fingerprint is False
    assert settings.early_fingerprint is False
    assert settings.sla_preset == "baseline"
    assert settings.conformance_preset == "strict-blocking"
    assert (settings.health_attempts, settings.health_backoff_seconds) == (3, 10.0)
    assert settings.health_timeout_seconds == 5.0
    assert settings.coordinator_timeout_seconds == 2.0


def test_file_values_and_their_source(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "seamless:\n  profile: prod\n  coordinator_url: http://coord:8080/\n"
        "  redis_dsn: redis://redis:6379/3\n",
    )
    loaded = load_config(path, env={})
    assert loaded.settings.profile == "prod"
    assert loaded.settings.coordinator_url == "http://coord:8080"  # trailing slash dropped
    assert loaded.source_of("redis_dsn") == str(path)
    assert loaded.source_of("questdb_dsn") == DEFAULT_SOURCE
    assert loaded.config_dir == tmp_path


def test_env_wins_over_file_and_is_recorded(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "seamless:\n  redis_dsn: redis://file:6379/0\n  artifacts_enabled: false\n"
    )
    env = {
        "QMTL_SEAMLESS_REDIS_DSN": "redis://env:6379/1",
        "QMTL_SEAMLESS_ARTIFACTS": "1",
        "QMTL_SEAMLESS_SLA_PRESET": "tolerant-partial",
    }
    loaded = load_config(path, env=env)
    assert loaded.settings.redis_dsn == "redis://env:6379/1"
    assert loaded.settings.artifacts_enabled is True
    assert loaded.settings.sla_preset == "tolerant-partial"
    assert loaded.source_of("redis_dsn") == "env var QMTL_SEAMLESS_REDIS_DSN"
    assert loaded.source_of("artifacts_enabled") == "env var QMTL_SEAMLESS_ARTIFACTS"


def test_empty_env_var_counts_as_unset(tmp_path: Path) -> None:
    path = _write(tmp_path, "seamless:\n  redis_dsn: redis://file:6379/0\n")
    loaded = load_config(path, env={"QMTL_SEAMLESS_REDIS_DSN": ""})
    assert loaded.settings.redis_dsn == "redis://file:6379/0"
    assert loaded.source_of("redis_dsn") == str(path)


def test_qmtl_top_level_profile_and_connectors_worker_are_folded_in(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "profile: prod\nconnectors:\n  seamless_worker_id: worker-a\n"
        "seamless:\n  coordinator_url: http://coord:8080\n",
    )
    loaded = load_config(path, env={})
    assert loaded.settings.profile == "prod"
    assert loaded.settings.seamless_worker_id == "worker-a"


def test_section_profile_beats_top_level(tmp_path: Path) -> None:
    path = _write(tmp_path, "profile: prod\nseamless:\n  profile: dev\n")
    assert load_config(path, env={}).settings.profile == "dev"


def test_missing_section_is_its_own_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "gateway: {}\n")
    with pytest.raises(ConfigSectionMissing, match="no 'seamless' section"):
        load_config(path, env={})


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file") as caught:
        load_config(tmp_path / "absent.yml", env={})
    assert caught.value.key == "--config"


def test_token_never_appears_in_messages(tmp_path: Path) -> None:
    path = _write(tmp_path, "seamless:\n  coordinator_token: ''\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "seamless.coordinator_token" in str(caught.value)
    loaded = load_section({"coordinator_token": "s3cr3t-value"}, env={})
    assert loaded.settings.token == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(loaded.settings)


def test_dsn_passwords_are_masked_in_messages() -> None:
    with pytest.raises(ConfigError) as caught:
        load_section({"questdb_dsn": "mysql://admin:hunter2@questdb:8812/qdb"}, env={})
    assert "hunter2" not in str(caught.value)
    assert "admin:***@questdb:8812" in str(caught.value)
    assert mask_url_password("redis://:pw@r:6379/0") == "redis://:***@r:6379/0"
    assert mask_url_password("redis://r:6379/0") == "redis://r:6379/0"


def test_all_issues_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_section({"profile": "qa", "redis_dsn": "http://x", "colour": "blue"}, env={})
    message = str(caught.value)
    for key in ("seamless.profile", "seamless.redis_dsn", "seamless.colour"):
        assert key in message
    assert caught.value.key == "seamless.profile"


def test_unknown_prefixed_env_vars_get_a_did_you_mean() -> None:
    found = unknown_env_vars(
        {"QMTL_SEAMLESS_REDIS_DNS": "x", "QMTL_SEAMLESS_WORKER": "w", "PATH": "/bin"}
    )
    assert found == [("QMTL_SEAMLESS_REDIS_DNS", "QMTL_SEAMLESS_REDIS_DSN")]


_text_keys = ["redis_dsn", "sla_preset", "artifact_dir", "fingerprint_mode"]
_values = {
    "redis_dsn": ("redis://file:6379/0", "redis://env:6379/1"),
    "sla_preset": ("baseline", "tolerant-partial"),
    "artifact_dir": ("/file/dir", "/env/dir"),
    "fingerprint_mode": ("canonical", "legacy"),
}


@given(in_file=st.sets(st.sampled_from(_text_keys)), in_env=st.sets(st.sampled_from(_text_keys)))
def test_provenance_is_exact_for_any_mix_of_sources(in_file: set[str], in_env: set[str]) -> None:
    section = {key: _values[key][0] for key in in_file}
    env = {ENV_VARS[key]: _values[key][1] for key in in_env}
    resolved = resolve_section(section, env, source="cfg.yml")
    loaded = load_section(section, env=env, source="cfg.yml")
    for key in _text_keys:
        if key in in_env:
            expected_value, expected_source = _values[key][1], f"env var {ENV_VARS[key]}"
        elif key in in_file:
            expected_value, expected_source = _values[key][0], "cfg.yml"
        else:
            expected_value, expected_source = getattr(SeamlessConfig(), key), DEFAULT_SOURCE
        assert getattr(loaded.settings, key) == expected_value
        assert resolved.source_of(key) == expected_source
        assert loaded.source_of(key) == expected_source
