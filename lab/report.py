"""The lab report: one Markdown file with PNG plots, written to ``reports/lab/``.

- ``latency.png``: per phase, p50/p95/p99 on a log axis with each phase's budget drawn as a
  red mark, so a breach is a dark bar crossing red at a glance;
- ``throughput.png``: requests and failures per second over the load run, with the users;
- ``report.md``: verdicts first (what passed, what failed), then the figures, the per-phase
  table against budgets, the fetch mix, the demo backfill's invariants and the chaos table.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a display
import matplotlib.pyplot as plt

from lab.demo_backfill import DemoResult
from lab.machine_load import LoadSummary

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRECTORY = REPO_ROOT / "reports" / "lab"
PHASE_ORDER = (
    "total",
    "storage_wait",
    "backfill_wait",
    "live_wait",
    "total:cache",
    "total:storage",
    "total:storage+backfill",
    "total:backfill",
    "lease.claim",
    "lease.renew",
    "lease.complete",
    "lease.fail",
    "lease.inspect",
)
_PCTS = (("p50_ms", "p50", "#9ecae1"), ("p95_ms", "p95", "#4292c6"), ("p99_ms", "p99", "#08306b"))


@dataclass
class Verdict:
    step: str
    ok: bool
    detail: str


@dataclass
class LabRun:
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    endpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    demo: DemoResult | None = None
    load: dict[str, Any] | None = None  # the gate's JSON report
    load_history: Path | None = None  # locust's *_stats_history.csv
    load_output_tail: str = ""
    chaos: dict[str, Any] | None = None  # chaos-report.json
    chaos_markdown: str = ""
    machine: LoadSummary | None = None  # the load average while the lab ran

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)


def ordered_phases(phases: dict[str, Any]) -> list[str]:
    known = [p for p in PHASE_ORDER if p in phases]
    return known + sorted(p for p in phases if p not in PHASE_ORDER)


def plot_latency(load: dict[str, Any], path: Path) -> Path:
    phases = load["phases"]
    names = ordered_phases(phases)
    budgets = load.get("budgets", {})
    fig, ax = plt.subplots(figsize=(11, 0.62 * len(names) + 1.6), dpi=110)
    height = 0.26
    for row, name in enumerate(names):
        for k, (key, label, colour) in enumerate(_PCTS):
            value = phases[name].get(key)
            if value is None:
                continue
            y = row + (k - 1) * height
            ax.barh(y, value, height=height, color=colour, label=label if row == 0 else None)
            if key == "p99_ms":
                ax.text(value * 1.08, y, _ms(value), va="center", fontsize=8)
        budget = budgets.get(name, {}).get("p99")
        if budget:
            ax.plot(
                [budget["limit_ms"]] * 2,
                [row - 0.45, row + 0.45],
                color="#d62728",
                linewidth=3,
                label="budget (p95/p99)" if "budget (p95/p99)" not in _labels(ax) else None,
            )
            ax.text(  # above the bars (the y axis is inverted), clear of the p99 label
                budget["limit_ms"] * 1.08,
                row - 0.3,
                f"budget {_ms(budget['limit_ms'])}",
                color="#d62728",
                fontsize=8,
            )
    ax.set_yticks(range(len(names)), labels=names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    values = [
        v for n in names for key, _, _ in _PCTS if (v := phases[n].get(key)) is not None and v > 0
    ]
    limits = [b["p99"]["limit_ms"] for b in budgets.values() if "p99" in b]
    low = min(values, default=0.01)
    high = max([*values, *limits], default=1.0)
    ax.set_xlim(10 ** math.floor(math.log10(low)), 10 ** (math.ceil(math.log10(high)) + 0.4))
    ax.set_xlabel("latency, ms (log scale)")
    verdict = "PASSED" if load["gate"]["passed"] else "FAILED"
    ax.set_title(
        f"Per-phase latency vs SLA budgets (preset {load['preset']}): gate {verdict} - "
        f"{load['rps']:.0f} req/s, {load['fetch_rps']:.0f} fetches/s over "
        f"{load['duration_s']:.0f} s"
    )
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_throughput(history_csv: Path, path: Path) -> Path | None:
    rows = _history(history_csv)
    if not rows:
        return None
    t0 = rows[0][0]
    times = [r[0] - t0 for r in rows]
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=110)
    ax.plot(times, [r[2] for r in rows], color="#08306b", label="requests/s")
    ax.plot(times, [r[3] for r in rows], color="#d62728", label="failures/s")
    ax.set_xlabel("seconds into the load run")
    ax.set_ylabel("locust events/s (each fetch phase counts)")
    ax.set_ylim(bottom=0)
    users = ax.twinx()
    users.plot(times, [r[1] for r in rows], color="#999999", linestyle="--", label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = users.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    ax.set_title("Throughput over the load run")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _history(path: Path) -> list[tuple[float, float, float, float]]:
    if not path.exists():
        return []
    out = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != "Aggregated":
                continue
            try:
                out.append(
                    (
                        float(row["Timestamp"]),
                        float(row["User Count"]),
                        float(row["Requests/s"]),
                        float(row["Failures/s"]),
                    )
                )
            except (KeyError, ValueError):
                continue
    return out


def _labels(ax: Any) -> list[str]:
    return [str(label) for label in ax.get_legend_handles_labels()[1]]


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 1:
        return f"{value:.1f} ms"
    return f"{value * 1000:.0f} µs"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_report(run: LabRun, directory: Path = DEFAULT_DIRECTORY) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Seamless lab report",
        "",
        f"Run started {run.started:%Y-%m-%d %H:%M:%S} UTC. Overall: "
        f"**{'PASSED' if run.ok else 'FAILED'}**.",
        "",
        "| step | result | detail |",
        "|---|---|---|",
    ]
    lines += [
        f"| {v.step} | {'PASS' if v.ok else '**FAIL**'} | {_cell(v.detail)} |" for v in run.verdicts
    ]
    if run.machine is not None:
        lines += ["", f"Machine: {run.machine.describe()}."]
    lines += ["", "## Data plane", "", "| server | endpoint |", "|---|---|"]
    for name, endpoints in run.endpoints.items():
        shown = "<br>".join(f"{k}: `{v}`" for k, v in endpoints.items())
        lines.append(f"| {name} | {shown} |")
    if run.load is not None:
        lines += _load_section(run, directory)
    if run.demo is not None:
        lines += _demo_section(run.demo)
    lines += ["", "## Chaos scenarios", ""]
    lines += [run.chaos_markdown or "The chaos suite wrote no report."]
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _load_section(run: LabRun, directory: Path) -> list[str]:
    load = run.load
    assert load is not None
    lines = ["", "## Load (CI profile)", ""]
    lines.append(
        f"Gate on preset `{load['preset']}`"
        + (f" and targets `{load['sla_targets']}`" if load.get("sla_targets") else "")
        + f": **{'PASSED' if load['gate']['passed'] else 'FAILED'}**. "
        f"{load['requests']} requests in {load['duration_s']:.1f} s: "
        f"**{load['rps']:.1f} req/s** sustained, of which {load['fetch_rps']:.1f} SDK "
        f"fetches/s; {load['users']} users."
    )
    breaches = [c["message"] for c in load["gate"]["checks"] if not c["passed"]]
    if breaches:
        lines += ["", "Breaches:", ""] + [f"- {b}" for b in breaches]
    lines += ["", "![per-phase latency against budgets](latency.png)", ""]
    plot_latency(load, directory / "latency.png")
    if run.load_history is not None and plot_throughput(
        run.load_history, directory / "throughput.png"
    ):
        lines += ["![throughput](throughput.png)", ""]
    lines += [
        "| phase | requests | failures | p50 ms | p95 ms | p99 ms | max ms | p99 budget ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ordered_phases(load["phases"]):
        row = load["phases"][name]
        budget = load.get("budgets", {}).get(name, {}).get("p99")
        cells = [
            row["requests"],
            row["failures"],
            row.get("p50_ms"),
            row.get("p95_ms"),
            row.get("p99_ms"),
            row.get("max_ms"),
            f"{budget['limit_ms']:g} ({budget['source']})" if budget else None,
        ]
        lines.append(f"| {name} | " + " | ".join(_cell(c) for c in cells) + " |")
    labels = load.get("labels", {})
    mix = ", ".join(f"{k}: {v}" for k, v in sorted(labels.items()))
    lines += ["", f"Fetch mix (what was asked, where bars came from, errors): {mix or '-'}."]
    return lines


def _demo_section(demo: DemoResult) -> list[str]:
    lines = [
        "",
        "## Demo backfill",
        "",
        f"{demo.workers} workers asked for the same {demo.shards} shards ({demo.bars} bars) at "
        f"once; done in {demo.duration_s:.2f} s. Shards completed per worker: "
        + ", ".join(f"{w} {n}" for w, n in demo.shards_by_worker.items())
        + ".",
        "",
        "| invariant | holds | detail |",
        "|---|---|---|",
    ]
    lines += [
        f"| {i.name} | {'yes' if i.ok else '**NO**'} | {_cell(i.detail)} |" for i in demo.invariants
    ]
    return lines
