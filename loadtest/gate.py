"""The SLA gate: a load run passes only if every phase's p95 and p99 stay within budget and
no phase fails more often than allowed.

Budgets come from an SLA preset of the SDK (``baseline`` by default, any preset by name,
read through `seamless.data.sla.SLAPolicy.preset`, so the numbers live in presets.yaml only) and,
optionally, from a stricter target file. Where both give a budget the smaller one applies: a
target file can only tighten the preset. A preset's budget is a per-request deadline, so it
bounds both the p95 and the p99 of its phase. Presets carry no failure-ratio budget; the
gate allows none unless the target file says otherwise.

Target file (YAML), every key optional::

    phases:                      # any phase or operation name the users record
      total: {p95_ms: 150, p99_ms: 250}
      lease.claim: {p99_ms: 25}
    max_failure_ratio: 0.0       # per phase, 0..1
    min_requests: 1000           # fewer requests than this fails the run
    min_rps: 150                 # sustained requests/s over the whole run

A run with zero requests always fails: a gate that passes when nothing ran proves nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from seamless.data.sla import Phase, SLAPolicy
from seamless.errors import ConfigError

from loadtest.recorder import PhaseRecorder, PhaseStats

# SLA sub-phases of one fetch; every other recorded name is one request (a fetch's `total`
# or a lease operation), which is what request counts and rates are made of.
SUB_PHASES = frozenset(
    {Phase.STORAGE_WAIT.value, Phase.BACKFILL_WAIT.value, Phase.LIVE_WAIT.value, "sync_gap"}
)
PRESET_PHASES = (Phase.STORAGE_WAIT, Phase.BACKFILL_WAIT, Phase.LIVE_WAIT, Phase.TOTAL)
GATED_PERCENTILES = (95.0, 99.0)


class PhaseTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)


class TargetFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    phases: dict[str, PhaseTarget] = Field(default_factory=dict)
    max_failure_ratio: float | None = Field(default=None, ge=0, le=1)
    min_requests: int | None = Field(default=None, ge=1)
    min_rps: float | None = Field(default=None, gt=0)


TARGET_FILE_FORM = (
    "a YAML mapping with optional keys phases: {NAME: {p95_ms, p99_ms}}, "
    "max_failure_ratio (0..1), min_requests (>= 1), min_rps (> 0)"
)


def load_target_file(path: str | Path) -> TargetFile:
    """Parse a target file; a bad one raises `ConfigError` naming the key and the form."""
    where = str(path)
    try:
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"SLA target file {where}: cannot read it ({exc.strerror}); "
            f"expected {TARGET_FILE_FORM}",
            key="sla_targets",
            source=where,
            expected=TARGET_FILE_FORM,
        ) from None
    except yaml.YAMLError:
        raise ConfigError(
            f"SLA target file {where}: not valid YAML; expected {TARGET_FILE_FORM}",
            key="sla_targets",
            source=where,
            expected=TARGET_FILE_FORM,
        ) from None
    try:
        return TargetFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error.get("loc", ())) or "top level"
        raise ConfigError(
            f"SLA target file {where}: {key}: {error['msg']} (got {error.get('input')!r}); "
            f"expected {TARGET_FILE_FORM}",
            key=key,
            source=where,
            expected=TARGET_FILE_FORM,
        ) from None


@dataclass(frozen=True)
class Budget:
    limit: float
    source: str  # "preset baseline" or "target file PATH"


@dataclass
class Budgets:
    """What the gate checks: per phase and percentile a limit in ms (with where it came
    from), the failure-ratio limit, and the minimum request count and rate."""

    latency: dict[str, dict[float, Budget]] = field(default_factory=dict)
    max_failure_ratio: Budget = field(default_factory=lambda: Budget(0.0, "gate default"))
    min_requests: Budget = field(default_factory=lambda: Budget(1, "gate default"))
    min_rps: Budget | None = None

    def tighten(self, phase: str, pct: float, budget: Budget) -> None:
        current = self.latency.setdefault(phase, {}).get(pct)
        if current is None or budget.limit < current.limit:
            self.latency[phase][pct] = budget

    @classmethod
    def build(
        cls,
        preset: str = "baseline",
        *,
        presets_file: str | None = None,
        targets: TargetFile | None = None,
        targets_source: str = "target file",
    ) -> Budgets:
        policy = SLAPolicy.preset(preset, presets_file)
        budgets = cls()
        for phase in PRESET_PHASES:
            limit = policy.budget_ms(phase)
            if limit is not None:
                for pct in GATED_PERCENTILES:
                    budgets.tighten(phase.value, pct, Budget(float(limit), f"preset {preset}"))
        if targets is None:
            return budgets
        for name, target in targets.phases.items():
            for pct, wanted in ((95.0, target.p95_ms), (99.0, target.p99_ms)):
                if wanted is not None:
                    budgets.tighten(name, pct, Budget(wanted, targets_source))
        if targets.max_failure_ratio is not None:
            budgets.max_failure_ratio = Budget(targets.max_failure_ratio, targets_source)
        if targets.min_requests is not None:
            budgets.min_requests = Budget(targets.min_requests, targets_source)
        if targets.min_rps is not None:
            budgets.min_rps = Budget(targets.min_rps, targets_source)
        return budgets


@dataclass(frozen=True)
class Check:
    subject: str  # phase name, or "run"
    metric: str  # p95, p99, failure_ratio, requests, rps
    observed: float
    budget: Budget
    passed: bool
    higher_is_worse: bool = True

    @property
    def unit(self) -> str:
        return {"failure_ratio": "", "requests": " requests", "rps": " req/s", "samples": ""}.get(
            self.metric, " ms"
        )

    def message(self) -> str:
        u = self.unit
        if self.higher_is_worse:
            over = self.observed - self.budget.limit
            rel = f", +{over / self.budget.limit:.0%}" if self.budget.limit > 0 else ""
            return (
                f"{self.subject} {self.metric} {_num(self.observed)}{u} > budget "
                f"{_num(self.budget.limit)}{u} ({self.budget.source}): over by {_num(over)}{u}"
                f"{rel}"
            )
        short = self.budget.limit - self.observed
        return (
            f"{self.subject} {self.metric} {_num(self.observed)}{u} < minimum "
            f"{_num(self.budget.limit)}{u} ({self.budget.source}): short by {_num(short)}{u}"
        )


@dataclass
class GateResult:
    checks: list[Check]
    requests: int
    duration_s: float

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def breaches(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def report(self) -> str:
        if self.passed:
            return (
                f"SLA gate PASSED: {len(self.checks)} checks, {self.requests} requests, "
                f"{self.rps:.1f} req/s"
            )
        lines = [f"SLA gate FAILED ({len(self.breaches)} of {len(self.checks)} checks):"]
        lines += [f"  - {check.message()}" for check in self.breaches]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "requests": self.requests,
            "duration_s": self.duration_s,
            "rps": self.rps,
            "checks": [
                {
                    "subject": c.subject,
                    "metric": c.metric,
                    "observed": c.observed,
                    "limit": c.budget.limit,
                    "source": c.budget.source,
                    "passed": c.passed,
                    "message": None if c.passed else c.message(),
                }
                for c in self.checks
            ],
        }


def request_count(recorder: PhaseRecorder) -> int:
    return sum(stats.requests for name, stats in recorder.phases.items() if name not in SUB_PHASES)


def evaluate(recorder: PhaseRecorder, budgets: Budgets, duration_s: float) -> GateResult:
    """Every check of the gate against what `recorder` saw in `duration_s` seconds."""
    checks: list[Check] = []
    requests = request_count(recorder)
    checks.append(
        Check(
            "run",
            "requests",
            float(requests),
            budgets.min_requests,
            requests >= max(1, budgets.min_requests.limit),
            higher_is_worse=False,
        )
    )
    if budgets.min_rps is not None:
        rps = requests / duration_s if duration_s > 0 else 0.0
        checks.append(
            Check("run", "rps", rps, budgets.min_rps, rps >= budgets.min_rps.limit, False)
        )
    for name, by_pct in sorted(budgets.latency.items()):
        explicit = [b for b in by_pct.values() if not b.source.startswith("preset")]
        if explicit and recorder.phases.get(name, PhaseStats()).latency.count == 0:
            # a phase the target file names but the run never measured proves nothing
            checks.append(Check(name, "samples", 0.0, Budget(1, explicit[0].source), False, False))
    for name in recorder.names():
        stats = recorder.phases[name]
        ratio = stats.failure_ratio
        limit = budgets.max_failure_ratio
        checks.append(Check(name, "failure_ratio", ratio, limit, ratio <= limit.limit))
        for pct, budget in sorted(budgets.latency.get(name, {}).items()):
            observed = stats.latency.percentile(pct)
            if math.isnan(observed):
                continue  # every request of the phase failed: the failure ratio says so
            checks.append(Check(name, f"p{pct:g}", observed, budget, observed <= budget.limit))
    return GateResult(checks=checks, requests=requests, duration_s=duration_s)


def _num(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
