"""Presets: the packaged numbers, `presets_file` relative to the config file, dangling names."""

from __future__ import annotations

from pathlib import Path

import pytest
from seamless.config.loading import load_config, load_section
from seamless.config.presets import load_presets, packaged_presets, resolve_presets_path
from seamless.errors import ConfigError, PresetError

pytestmark = pytest.mark.unit


def test_packaged_sla_presets_carry_the_reference_numbers() -> None:
    presets = packaged_presets()
    baseline = presets.sla_policy("baseline")
    assert (
        baseline.total_deadline_ms,
        baseline.max_wait_storage_ms,
        baseline.max_wait_backfill_ms,
        baseline.max_wait_live_ms,
        baseline.retry_backoff_ms,
        baseline.min_coverage,
        baseline.max_lag_seconds,
        baseline.on_violation,
    ) == (60000, 3000, 45000, 5000, 500, 0.98, 45, "fail_fast")
    tolerant = presets.sla_policy("tolerant-partial")
    assert (
        tolerant.total_deadline_ms,
        tolerant.max_wait_storage_ms,
        tolerant.max_wait_backfill_ms,
        tolerant.max_wait_live_ms,
        tolerant.retry_backoff_ms,
        tolerant.min_coverage,
        tolerant.max_lag_seconds,
        tolerant.on_violation,
    ) == (90000, 5000, 75000, 7000, 1000, 0.9, 90, "partial_fill")


def test_packaged_conformance_presets() -> None:
    presets = packaged_presets()
    strict = presets.conformance_preset("strict-blocking")
    assert strict.partial_ok is False
    assert strict.interval_ms == 60000
    assert [(f.name, f.dtype) for f in strict.schema_.fields] == [
        ("ts", "datetime64[ns]"),
        ("open", "float64"),
        ("high", "float64"),
        ("low", "float64"),
        ("close", "float64"),
        ("volume", "float64"),
    ]
    dev = presets.conformance_preset("permissive-dev")
    assert dev.partial_ok is True
    assert dev.interval_ms is None
    assert dev.schema_.fields == ()


def test_dangling_name_is_an_error_with_did_you_mean() -> None:
    with pytest.raises(PresetError, match="did you mean 'baseline'"):
        packaged_presets().sla_policy("baseln")
    with pytest.raises(ConfigError, match="enterprise"):
        load_section({"sla_preset": "enterprise"}, env={})


def test_presets_file_resolves_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mine.yaml").write_text(
        "sla_presets:\n  fast:\n    policy:\n      total_deadline_ms: 1000\n"
        "conformance_presets:\n  loose:\n    partial_ok: true\n",
        encoding="utf-8",
    )
    config = tmp_path / "conf" / "qmtl.yml"
    config.write_text(
        "seamless:\n  presets_file: mine.yaml\n  sla_preset: fast\n  conformance_preset: loose\n",
        encoding="utf-8",
    )
    loaded = load_config(config, env={})
    presets = load_presets(loaded.settings.presets_file, loaded.config_dir)
    assert presets.origin == str(tmp_path / "conf" / "mine.yaml")
    assert presets.sla_policy("fast").total_deadline_ms == 1000
    assert presets.conformance_preset("loose").partial_ok is True


def test_absolute_presets_path_is_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "p.yaml"
    assert resolve_presets_path(str(absolute), Path("/elsewhere")) == absolute
    assert resolve_presets_path("p.yaml", tmp_path) == absolute


def test_malformed_presets_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sla_presets:\n  x:\n    policy:\n      on_violation: explode\n")
    with pytest.raises(PresetError, match=r"sla_presets\.x\.policy\.on_violation"):
        load_presets(str(bad))
    bad.write_text("sla_presets: [\n")
    with pytest.raises(PresetError, match="not valid YAML"):
        load_presets(str(bad))
