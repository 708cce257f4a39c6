"""SLA budgets for one data request, and the clock that enforces them.

`SLAPolicy` carries QMTL's fields and semantics: a budget per phase (storage_wait,
backfill_wait, live_wait, total) plus a bound on synchronous gap bars (sync_gap). A breach
under ``on_violation: fail_fast`` raises `SeamlessSLAExceeded`; under ``partial_fill`` or
``hold`` the request still answers, with its metadata downgraded. A coverage below
``min_coverage`` or a lag above ``max_lag_seconds`` forces HOLD whatever the mode, because
serving that data as if it were whole would be wrong.

Named presets (``baseline``, ``tolerant-partial``) come from the packaged presets.yaml
through `seamless.config.presets`; the numbers live there only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from seamless.config.presets import load_presets
from seamless.errors import SeamlessSLAExceeded


class Phase(StrEnum):
    STORAGE_WAIT = "storage_wait"
    BACKFILL_WAIT = "backfill_wait"
    LIVE_WAIT = "live_wait"
    TOTAL = "total"
    SYNC_GAP = "sync_gap"


class OnViolation(StrEnum):
    FAIL_FAST = "fail_fast"
    PARTIAL_FILL = "partial_fill"
    HOLD = "hold"


class SLAPolicy(BaseModel):
    """Budgets in milliseconds; ``None`` means unbounded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_wait_storage_ms: int | None = Field(default=None, ge=0)
    max_wait_backfill_ms: int | None = Field(default=None, ge=0)
    max_wait_live_ms: int | None = Field(default=None, ge=0)
    retry_backoff_ms: int | None = Field(default=None, ge=0)
    total_deadline_ms: int | None = Field(default=None, ge=0)
    max_sync_gap_bars: int | None = Field(default=None, ge=0)
    on_violation: OnViolation = OnViolation.FAIL_FAST
    min_coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    max_lag_seconds: float | None = Field(default=None, ge=0.0)

    def budget_ms(self, phase: Phase) -> int | None:
        return {
            Phase.STORAGE_WAIT: self.max_wait_storage_ms,
            Phase.BACKFILL_WAIT: self.max_wait_backfill_ms,
            Phase.LIVE_WAIT: self.max_wait_live_ms,
            Phase.TOTAL: self.total_deadline_ms,
            Phase.SYNC_GAP: None,
        }[phase]

    @classmethod
    def preset(
        cls, name: str, presets_file: str | None = None, config_dir: Path | None = None
    ) -> SLAPolicy:
        """The SLA preset `name` from the packaged presets.yaml (or `presets_file`);
        an unknown name raises `PresetError` naming the known ones."""
        policy = load_presets(presets_file, config_dir).sla_policy(name)
        return cls.model_validate(policy.model_dump())


@dataclass
class Downgrade:
    """Why a result is not the whole truth: ``mode`` is partial_fill or hold."""

    mode: OnViolation
    reasons: list[str] = field(default_factory=list)


@dataclass
class SLAClock:
    """Times the phases of one request against `policy` and decides what a breach means."""

    policy: SLAPolicy
    node_id: str
    started: float = field(default_factory=time.monotonic)
    phase_ms: dict[str, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    force_hold: list[str] = field(default_factory=list)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def remaining_ms(self, phase: Phase) -> float | None:
        """The time this phase may still take: its own budget capped by what is left of
        the total deadline. ``None`` means unbounded."""
        limits: list[float] = []
        budget = self.policy.budget_ms(phase)
        if budget is not None:
            limits.append(float(budget))
        if self.policy.total_deadline_ms is not None:
            limits.append(max(0.0, self.policy.total_deadline_ms - self.elapsed_ms()))
        return min(limits) if limits else None

    def record(self, phase: Phase, elapsed_ms: float) -> None:
        """Record a finished phase; a breach raises under fail_fast, else is remembered."""
        self.phase_ms[phase.value] = self.phase_ms.get(phase.value, 0.0) + elapsed_ms
        budget = self.policy.budget_ms(phase)
        if budget is not None and self.phase_ms[phase.value] > budget:
            self.breach(phase, self.phase_ms[phase.value], float(budget))

    def breach(self, phase: Phase, elapsed: float, budget: float) -> None:
        if self.policy.on_violation is OnViolation.FAIL_FAST:
            raise SeamlessSLAExceeded(phase.value, self.node_id, elapsed, budget)
        unit = "bars" if phase is Phase.SYNC_GAP else "ms"
        self.violations.append(f"{phase.value}: {elapsed:.0f} {unit} > budget {budget:.0f} {unit}")

    def check_sync_gap(self, gap_bars: int) -> None:
        limit = self.policy.max_sync_gap_bars
        if limit is not None and gap_bars > limit:
            self.breach(Phase.SYNC_GAP, float(gap_bars), float(limit))

    def finish(self) -> None:
        """Close the total phase."""
        self.record(Phase.TOTAL, self.elapsed_ms())

    def check_quality(self, coverage_ratio: float, lag_seconds: float | None) -> None:
        """min_coverage / max_lag breaches force HOLD in every mode."""
        if self.policy.min_coverage is not None and coverage_ratio < self.policy.min_coverage:
            self.force_hold.append(
                f"coverage {coverage_ratio:.4f} < min_coverage {self.policy.min_coverage}"
            )
        limit = self.policy.max_lag_seconds
        if limit is not None and lag_seconds is not None and lag_seconds > limit:
            self.force_hold.append(f"lag {lag_seconds:.0f} s > max_lag_seconds {limit}")

    def downgrade(self, served_partially: list[str] | None = None) -> Downgrade | None:
        """The result's downgrade, if any. `served_partially` lists reasons the answer is
        partial without an SLA breach (e.g. a PARTIAL_FILL strategy): those downgrade to
        partial_fill even under a fail_fast policy, which only governs breaches."""
        extra = list(served_partially or [])
        if self.force_hold:
            return Downgrade(OnViolation.HOLD, [*self.violations, *extra, *self.force_hold])
        if self.violations or extra:
            mode = self.policy.on_violation
            if mode is OnViolation.FAIL_FAST:
                mode = OnViolation.PARTIAL_FILL
            return Downgrade(mode, [*self.violations, *extra])
        return None
