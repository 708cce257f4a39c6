"""The load gate's arithmetic: exact-enough percentiles, merging, and every gate rule."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from seamless.errors import ConfigError, PresetError

from loadtest.gate import Budgets, evaluate, load_target_file
from loadtest.recorder import LatencyHistogram, PhaseRecorder

pytestmark = pytest.mark.unit


def test_percentiles_within_half_a_percent_of_exact_from_microseconds_to_minutes() -> None:
    rng = random.Random(3)
    samples = [rng.lognormvariate(0, 3) for _ in range(20_000)]  # ~1 µs .. minutes, in ms
    hist = LatencyHistogram()
    for value in samples:
        hist.record(value)
    ordered = sorted(samples)
    for pct in (50, 90, 95, 99, 99.9):
        exact = ordered[max(0, int(pct / 100 * len(ordered) + 0.999999) - 1)]
        assert hist.percentile(pct) == pytest.approx(exact, rel=0.005)
    assert hist.percentile(100) == max(samples)
    assert hist.min_ms == min(samples)


def test_sub_millisecond_values_stay_distinct() -> None:
    hist = LatencyHistogram()
    for value in (0.020, 0.021, 0.5, 0.9):
        hist.record(value)
    assert hist.percentile(25) == pytest.approx(0.020, rel=0.005)
    assert hist.percentile(75) == pytest.approx(0.5, rel=0.005)


def test_merge_and_round_trip_equal_one_recorder() -> None:
    whole, left, right = PhaseRecorder(), PhaseRecorder(), PhaseRecorder()
    for i in range(1, 1001):
        error = "boom" if i % 100 == 0 else None
        whole.record("total", i / 10, error)
        (left if i % 2 else right).record("total", i / 10, error)
    merged = PhaseRecorder.from_dict(left.to_dict())
    merged.merge(PhaseRecorder.from_dict(right.to_dict()))
    assert merged.summary() == whole.summary()
    assert merged.phases["total"].failures == 10


def test_bad_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a finite value"):
        LatencyHistogram().record(float("nan"))


def _recorder(total_ms: list[float], failures: int = 0) -> PhaseRecorder:
    recorder = PhaseRecorder()
    for value in total_ms:
        recorder.record("total", value, None)
        recorder.record("storage_wait", value / 2, None)
    for _ in range(failures):
        recorder.record("total", 1.0, RuntimeError("upstream down"))
    return recorder


def test_baseline_budgets_come_from_the_sdk_presets() -> None:
    budgets = Budgets.build("baseline")
    assert budgets.latency["total"][99.0].limit == 60_000
    assert budgets.latency["storage_wait"][95.0].limit == 3_000
    assert budgets.latency["backfill_wait"][99.0].source == "preset baseline"
    tolerant = Budgets.build("tolerant-partial")
    assert tolerant.latency["total"][99.0].limit == 90_000


def test_unknown_preset_is_named() -> None:
    with pytest.raises(PresetError, match="enterprise"):
        Budgets.build("enterprise")


def test_passes_within_budgets() -> None:
    result = evaluate(_recorder([5.0] * 100), Budgets.build("baseline"), duration_s=10)
    assert result.passed, result.report()
    assert result.requests == 100  # sub-phases are not requests
    assert result.rps == 10


def test_zero_requests_fail() -> None:
    result = evaluate(PhaseRecorder(), Budgets.build("baseline"), duration_s=10)
    assert not result.passed
    assert "run requests 0 requests < minimum 1" in result.report()


def test_a_tightened_target_fails_naming_phase_budget_and_margin(tmp_path: Path) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text("phases:\n  total: {p99_ms: 100}\n  storage_wait: {p95_ms: 80000}\n")
    budgets = Budgets.build(
        "baseline", targets=load_target_file(targets), targets_source=f"target file {targets}"
    )
    # a target never loosens the preset: storage_wait keeps 3000 ms
    assert budgets.latency["storage_wait"][95.0].limit == 3_000
    result = evaluate(_recorder([10.0] * 98 + [150.0, 150.0]), budgets, duration_s=1)
    assert not result.passed
    (breach,) = result.breaches
    assert breach.subject == "total" and breach.metric == "p99"
    # 150 ms as the histogram holds it (within 0.4 %)
    assert re.search(r"total p99 149\.\d ms > budget 100 ms", breach.message())
    assert re.search(r"over by 49\.\d+ ms, \+50%", breach.message())
    assert str(targets) in breach.message()


def test_failure_ratio_is_gated(tmp_path: Path) -> None:
    recorder = _recorder([5.0] * 99, failures=1)
    assert not evaluate(recorder, Budgets.build("baseline"), 1).passed
    targets = tmp_path / "t.yaml"
    targets.write_text("max_failure_ratio: 0.02\nmin_rps: 50\n")
    budgets = Budgets.build("baseline", targets=load_target_file(targets))
    assert evaluate(recorder, budgets, duration_s=1).passed
    slow = evaluate(recorder, budgets, duration_s=10)
    assert [c.metric for c in slow.breaches] == ["rps"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("phases: {total: {p99: 5}}", "phases.total.p99"),
        ("phases: {total: {p99_ms: -1}}", "phases.total.p99_ms"),
        ("max_failure_ratio: 2", "max_failure_ratio"),
        ("min_requests: 0", "min_requests"),
        ("[1, 2]", "top level"),
        ("phases: [", "not valid YAML"),
    ],
)
def test_bad_target_files_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="expected a YAML mapping") as caught:
        load_target_file(path)
    assert named in str(caught.value)


def test_a_targeted_phase_that_never_ran_fails(tmp_path: Path) -> None:
    targets = tmp_path / "t.yaml"
    targets.write_text("phases:\n  backfill_wait: {p99_ms: 100}\n")
    budgets = Budgets.build("baseline", targets=load_target_file(targets))
    result = evaluate(_recorder([5.0] * 10), budgets, duration_s=1)
    assert [(c.subject, c.metric) for c in result.breaches] == [("backfill_wait", "samples")]
    # a preset phase that never ran (no live feed here) is not a breach
    assert evaluate(_recorder([5.0] * 10), Budgets.build("baseline"), 1).passed
