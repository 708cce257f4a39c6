from __future__ import annotations

import pytest
from seamless.data.sla import OnViolation, Phase, SLAClock, SLAPolicy
from seamless.errors import PresetError, SeamlessSLAExceeded

pytestmark = pytest.mark.unit


def test_presets_carry_the_reference_numbers() -> None:
    baseline = SLAPolicy.preset("baseline")
    assert (baseline.total_deadline_ms, baseline.max_wait_storage_ms) == (60000, 3000)
    assert (baseline.max_wait_backfill_ms, baseline.max_wait_live_ms) == (45000, 5000)
    assert (baseline.retry_backoff_ms, baseline.min_coverage) == (500, 0.98)
    assert baseline.max_lag_seconds == 45 and baseline.on_violation is OnViolation.FAIL_FAST
    tolerant = SLAPolicy.preset("tolerant-partial")
    assert (tolerant.total_deadline_ms, tolerant.max_wait_backfill_ms) == (90000, 75000)
    assert tolerant.on_violation is OnViolation.PARTIAL_FILL and tolerant.min_coverage == 0.9


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(PresetError, match="enterprise") as err:
        SLAPolicy.preset("enterprise")
    assert "baseline" in err.value.expected


def test_fail_fast_breach_raises_with_phase_and_budget() -> None:
    clock = SLAClock(SLAPolicy(max_wait_storage_ms=10), "node-a")
    clock.record(Phase.STORAGE_WAIT, 5)
    with pytest.raises(SeamlessSLAExceeded) as err:
        clock.record(Phase.STORAGE_WAIT, 7)  # phases accumulate: 12 ms > 10 ms
    exc = err.value
    assert (exc.phase, exc.node_id, exc.elapsed_ms, exc.budget_ms) == (
        "storage_wait",
        "node-a",
        12,
        10,
    )


@pytest.mark.parametrize("mode", [OnViolation.PARTIAL_FILL, OnViolation.HOLD])
def test_non_fail_fast_breach_downgrades(mode: OnViolation) -> None:
    clock = SLAClock(SLAPolicy(max_wait_backfill_ms=10, on_violation=mode), "n")
    clock.record(Phase.BACKFILL_WAIT, 50)
    down = clock.downgrade()
    assert down is not None and down.mode is mode
    assert down.reasons[0].startswith("backfill_wait")


def test_sync_gap_breach_raises_under_fail_fast() -> None:
    clock = SLAClock(SLAPolicy(max_sync_gap_bars=1), "n")
    clock.check_sync_gap(1)
    with pytest.raises(SeamlessSLAExceeded) as err:
        clock.check_sync_gap(2)
    assert err.value.phase == "sync_gap"


def test_quality_breaches_force_hold_even_under_partial_fill() -> None:
    clock = SLAClock(
        SLAPolicy(min_coverage=0.9, max_lag_seconds=30, on_violation=OnViolation.PARTIAL_FILL),
        "n",
    )
    clock.check_quality(0.95, 10)
    assert clock.downgrade() is None
    clock.check_quality(0.5, 100)
    down = clock.downgrade()
    assert down is not None and down.mode is OnViolation.HOLD
    assert any("min_coverage" in r for r in down.reasons)
    assert any("max_lag_seconds" in r for r in down.reasons)


def test_remaining_is_capped_by_the_total_deadline() -> None:
    clock = SLAClock(SLAPolicy(max_wait_backfill_ms=10_000, total_deadline_ms=100), "n")
    left = clock.remaining_ms(Phase.BACKFILL_WAIT)
    assert left is not None and left <= 100
    assert SLAClock(SLAPolicy(), "n").remaining_ms(Phase.LIVE_WAIT) is None


def test_partial_answer_without_breach_is_partial_fill_under_fail_fast_policy() -> None:
    clock = SLAClock(SLAPolicy(), "n")
    down = clock.downgrade(["partial_fill: 10 bar(s) missing"])
    assert down is not None and down.mode is OnViolation.PARTIAL_FILL


def test_policy_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="min_coverage"):
        SLAPolicy(min_coverage=1.5)
    with pytest.raises(ValueError, match="on_violation"):
        SLAPolicy(on_violation="ignore")  # type: ignore[arg-type]
