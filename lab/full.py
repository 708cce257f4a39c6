"""The full lab run behind `make lab`: every step shown as it runs, every server stopped at
the end whatever happened, one report, and a verdict (True only if every gate and invariant
held)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from seamless.logging import configure_logging

from lab.coordinator_process import CoordinatorServer
from lab.dataplane import DataPlane
from lab.demo_backfill import run_demo
from lab.machine_load import LoadSampler
from lab.report import LabRun, Verdict, write_report
from lab.servers import REPO_ROOT, ServerStartError

T = TypeVar("T")
CHAOS_TIMEOUT_S = 1800.0


def _parse_seconds(run_time: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    total, number = 0.0, ""
    for char in run_time.strip():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total, number = total + float(number) * units[char], ""
        else:
            raise ValueError(f"run time {run_time!r}: expected e.g. 40s, 2m, 1h30m")
    return total + (float(number) if number else 0.0)


def _step(progress: Progress, label: str, expected_s: float | None, work: Callable[[], T]) -> T:
    """Run `work` in a thread while a progress line shows it (a bar if we know how long)."""
    task = progress.add_task(label, total=expected_s or None)
    outcome: dict[str, T] = {}
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name=label, daemon=True)
    began = time.monotonic()
    thread.start()
    while thread.is_alive():
        thread.join(timeout=0.25)
        if expected_s:
            progress.update(task, completed=min(expected_s, time.monotonic() - began))
    progress.update(task, completed=expected_s or 1, total=expected_s or 1)
    if failure:
        progress.update(task, description=f"[red]{label}: failed")
        raise failure[0]
    progress.update(task, description=f"[green]{label}: done")
    return outcome["value"]


def run_lab(
    console: Console,
    *,
    report_dir: Path,
    run_time: str,
    preset: str,
    sla_targets: Path | None,
    with_chaos: bool,
    with_load: bool,
) -> bool:
    configure_logging("WARNING")  # the SDK's per-request logs would drown the progress
    report_dir.mkdir(parents=True, exist_ok=True)
    lab = LabRun()
    load_seconds = _parse_seconds(run_time)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress, LoadSampler() as load:
        plane = DataPlane()
        try:
            _step(progress, "start redis, questdb, minio, toxiproxy", None, plane.__enter__)
        except ServerStartError as exc:
            console.print(f"[red]lab: a server failed to start[/red]\n{exc}")
            return False
        try:
            coordinator = CoordinatorServer(
                plane.redis.url, plane.questdb.pg_dsn, log_level="warning"
            )
            _step(progress, "start the coordinator", None, coordinator.start)
            try:
                _data_plane_steps(
                    progress,
                    lab,
                    plane,
                    coordinator,
                    report_dir,
                    with_load,
                    run_time,
                    load_seconds,
                    preset,
                    sla_targets,
                )
            finally:
                _step(progress, "stop the coordinator", None, coordinator.cleanup)
        finally:
            _step(progress, "stop the data plane", None, lambda: plane.__exit__(None, None, None))
        if with_chaos:
            _chaos(progress, lab, report_dir)
    lab.machine = load.summary
    path = write_report(lab, report_dir)
    _print_summary(console, lab, path)
    return lab.ok


def _data_plane_steps(
    progress: Progress,
    lab: LabRun,
    plane: DataPlane,
    coordinator: CoordinatorServer,
    report_dir: Path,
    with_load: bool,
    run_time: str,
    load_seconds: float,
    preset: str,
    sla_targets: Path | None,
) -> None:
    lab.endpoints = plane.endpoints()
    lab.endpoints["coordinator"] = {"url": coordinator.url, "metrics": coordinator.metrics_url}
    health = {**plane.health(), "coordinator": coordinator.ready()}
    sick = [name for name, ok in health.items() if not ok]
    lab.verdicts.append(
        Verdict(
            "data plane healthy",
            not sick,
            "unhealthy: " + ", ".join(sick)
            if sick
            else "redis, questdb, minio, toxiproxy, coordinator answer their health checks",
        )
    )
    demo = _step(
        progress,
        "demo backfill: 4 workers, 32 shards",
        None,
        lambda: asyncio.run(
            run_demo(
                coordinator.url,
                coordinator.token,
                plane.questdb.pg_dsn,
                plane.questdb.ilp_http_conf,
            )
        ),
    )
    lab.demo = demo
    failed = [i.name for i in demo.invariants if not i.ok]
    lab.verdicts.append(
        Verdict(
            "demo backfill invariants",
            demo.ok,
            f"{len(demo.invariants) - len(failed)}/{len(demo.invariants)} hold"
            + (": broken: " + "; ".join(failed) if failed else f"; {demo.duration_s:.2f} s"),
        )
    )
    if with_load:
        _load(
            progress,
            lab,
            plane,
            coordinator,
            report_dir,
            run_time,
            load_seconds,
            preset,
            sla_targets,
        )


def _load(
    progress: Progress,
    lab: LabRun,
    plane: DataPlane,
    coordinator: CoordinatorServer,
    report_dir: Path,
    run_time: str,
    load_seconds: float,
    preset: str,
    sla_targets: Path | None,
) -> None:
    from loadtest.local import target_for
    from loadtest.run import run_profile

    target_file = target_for(coordinator, plane.questdb).write(report_dir / ".target.json")
    csv_prefix = report_dir / "load"
    extra = ["--sla-preset", preset, "--csv", str(csv_prefix), "--csv-full-history"]
    if sla_targets is not None:
        extra += ["--sla-targets", str(sla_targets)]
    try:
        result = _step(
            progress,
            f"CI load profile ({run_time}, gate: {preset})",
            load_seconds + 10,
            lambda: run_profile(
                "ci", target_file, report_dir / "load-report.json", run_time=run_time, extra=extra
            ),
        )
    finally:
        target_file.unlink(missing_ok=True)  # it holds the coordinator token
    lab.load = result.report
    lab.load_history = Path(f"{csv_prefix}_stats_history.csv")
    lab.load_output_tail = "\n".join(result.output.splitlines()[-40:])
    if result.report is None:
        lab.verdicts.append(
            Verdict(
                "load gate",
                False,
                f"locust exited {result.exit_code} without a report: "
                + lab.load_output_tail[-600:],
            )
        )
        return
    gate = result.report["gate"]
    breaches = [c["message"] for c in gate["checks"] if not c["passed"]]
    lab.verdicts.append(
        Verdict(
            "load gate",
            result.passed,
            f"{result.report['rps']:.0f} req/s, {result.report['fetch_rps']:.0f} fetches/s, "
            f"exit {result.exit_code}"
            + ("; " + "; ".join(breaches) if breaches else f"; {len(gate['checks'])} checks"),
        )
    )


def _chaos(progress: Progress, lab: LabRun, report_dir: Path) -> None:
    from chaos.report import read_report, render_markdown

    chaos_dir = report_dir / "chaos"
    env = {**os.environ, "SEAMLESS_CHAOS_REPORT_DIR": str(chaos_dir), "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "chaos",
        "-m",
        "chaos",
        "-q",
        "-p",
        "no:cacheprovider",
    ]

    def work() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHAOS_TIMEOUT_S,
            check=False,
        )

    try:
        done = _step(progress, "chaos suite (pytest chaos)", None, work)
    except subprocess.TimeoutExpired:
        lab.verdicts.append(Verdict("chaos suite", False, f"timed out after {CHAOS_TIMEOUT_S} s"))
        return
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    try:
        report = read_report(chaos_dir)
    except (OSError, ValueError, KeyError) as exc:
        lab.verdicts.append(Verdict("chaos suite", False, f"no chaos report ({exc}); {summary}"))
        return
    lab.chaos = report.to_dict()
    markdown = render_markdown(report).replace("\n## ", "\n### ")
    lab.chaos_markdown = markdown.replace("# Chaos report\n", "", 1).strip()
    lab.verdicts.append(
        Verdict(
            "chaos scenarios and invariants",
            report.ok and done.returncode == 0,
            f"{lab.chaos['passed']}/{lab.chaos['total']} scenarios passed; pytest: {summary}",
        )
    )


def _print_summary(console: Console, lab: LabRun, path: Path) -> None:
    table = Table("step", "result", "detail", title="Seamless lab")
    for v in lab.verdicts:
        table.add_row(v.step, "[green]PASS[/green]" if v.ok else "[red]FAIL[/red]", v.detail)
    console.print(table)
    if lab.load is not None:
        phases = Table("phase", "requests", "p50 ms", "p95 ms", "p99 ms", title="load")
        for name, row in lab.load["phases"].items():
            phases.add_row(
                name,
                str(row["requests"]),
                *(
                    f"{row[k]:.3f}" if row.get(k) is not None else "-"
                    for k in ("p50_ms", "p95_ms", "p99_ms")
                ),
            )
        console.print(phases)
    verdict = "[green]PASSED[/green]" if lab.ok else "[red]FAILED[/red]"
    console.print(f"lab {verdict}; report: {path}")
