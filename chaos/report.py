"""The chaos report: one record per scenario (fault injected, what was expected, what was
observed, the invariants checked, duration, outcome), written as Markdown and JSON.

API (used by the chaos suite's conftest and by `make lab`):

    write_report(report, directory=None) -> ReportFiles     # both files, atomically
    read_report(directory=None) -> ChaosReport              # the last run's JSON
    render_markdown(report) -> str                          # the Markdown, for a console
    DEFAULT_DIRECTORY                                        # <repo>/reports/chaos

The directory defaults to ``reports/chaos`` at the repository root (git-ignored), or
``$SEAMLESS_CHAOS_REPORT_DIR`` when set. Files: ``chaos-report.json``, ``chaos-report.md``.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRECTORY = REPO_ROOT / "reports" / "chaos"
JSON_NAME = "chaos-report.json"
MARKDOWN_NAME = "chaos-report.md"
SCHEMA_VERSION = 1

Outcome = Literal["passed", "failed", "error", "skipped"]


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class ScenarioRecord:
    number: int
    title: str
    fault: str
    expected: str
    observed: list[str] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    duration_s: float = 0.0
    setup_s: float = 0.0
    # The machine's 1-minute load average as the scenario started, over its CPU count.
    load_1m: float = 0.0
    cpus: int = 0
    outcome: Outcome = "passed"
    error: str | None = None
    test_id: str = ""

    @property
    def invariants_ok(self) -> bool:
        return all(check.ok for check in self.invariants)

    @property
    def ok(self) -> bool:
        return self.outcome == "passed" and self.invariants_ok

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioRecord:
        fields = {k: v for k, v in data.items() if k != "ok"}
        fields["invariants"] = [InvariantResult(**row) for row in data.get("invariants", [])]
        return cls(**fields)


@dataclass
class ChaosReport:
    scenarios: list[ScenarioRecord] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished_at: str | None = None
    host: str = field(default_factory=platform.node)

    @property
    def ok(self) -> bool:
        return bool(self.scenarios) and all(s.ok for s in self.scenarios)

    @property
    def total_duration_s(self) -> float:
        return sum(s.duration_s + s.setup_s for s in self.scenarios)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "host": self.host,
            "ok": self.ok,
            "passed": sum(1 for s in self.scenarios if s.ok),
            "total": len(self.scenarios),
            "total_duration_s": round(self.total_duration_s, 3),
            "scenarios": [s.to_dict() for s in sorted(self.scenarios, key=_order)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChaosReport:
        return cls(
            scenarios=[ScenarioRecord.from_dict(row) for row in data.get("scenarios", [])],
            started_at=str(data.get("started_at", "")),
            finished_at=data.get("finished_at"),
            host=str(data.get("host", "")),
        )


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path


def _order(record: ScenarioRecord) -> tuple[int, str]:
    return record.number, record.test_id


def report_directory(directory: Path | str | None = None) -> Path:
    if directory is not None:
        return Path(directory)
    env = os.environ.get("SEAMLESS_CHAOS_REPORT_DIR")
    return Path(env) if env else DEFAULT_DIRECTORY


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(report: ChaosReport) -> str:
    scenarios = sorted(report.scenarios, key=_order)
    passed = sum(1 for s in scenarios if s.ok)
    lines = [
        "# Chaos report",
        "",
        f"- run: {report.started_at} → {report.finished_at or 'unfinished'} on `{report.host}`",
        f"- result: **{'PASS' if report.ok else 'FAIL'}** — {passed}/{len(scenarios)} "
        f"scenarios passed, {report.total_duration_s:.1f} s in scenarios (setup included)",
        "",
        "| # | scenario | fault injected | outcome | invariants | duration (s) | load (1 m) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scenarios:
        held = sum(1 for c in s.invariants if c.ok)
        mark = "pass" if s.ok else f"**{s.outcome if s.outcome != 'passed' else 'failed'}**"
        lines.append(
            f"| {s.number} | {_cell(s.title)} | {_cell(s.fault)} | {mark} | "
            f"{held}/{len(s.invariants)} | {s.duration_s:.2f} | {s.load_1m:.1f}/{s.cpus} |"
        )
    for s in scenarios:
        lines += [
            "",
            f"## {s.number}. {s.title}",
            "",
            f"- **fault**: {s.fault}",
            f"- **expected**: {s.expected}",
            f"- **outcome**: {s.outcome}; {s.duration_s:.2f} s (+{s.setup_s:.2f} s setup)"
            + (f"; test `{s.test_id}`" if s.test_id else ""),
        ]
        if s.error:
            lines += ["", "```", s.error.strip()[:4000], "```"]
        if s.observed:
            lines += ["", "Observed:", ""]
            lines += [f"- {line}" for line in s.observed]
        if s.invariants:
            lines += ["", "| invariant | holds | detail |", "|---|---|---|"]
            lines += [
                f"| {_cell(c.name)} | {'yes' if c.ok else '**NO**'} | {_cell(c.detail)} |"
                for c in s.invariants
            ]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: ChaosReport, directory: Path | str | None = None) -> ReportFiles:
    """Write ``chaos-report.json`` and ``chaos-report.md`` into `directory`."""
    if report.finished_at is None:
        report.finished_at = datetime.now(UTC).isoformat()
    where = report_directory(directory)
    where.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(markdown=where / MARKDOWN_NAME, json=where / JSON_NAME)
    _atomic_write(files.json, json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n")
    _atomic_write(files.markdown, render_markdown(report))
    return files


def read_report(directory: Path | str | None = None) -> ChaosReport:
    """The report last written to `directory`; FileNotFoundError if there is none."""
    path = report_directory(directory) / JSON_NAME
    return ChaosReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
