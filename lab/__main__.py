"""`make lab` (`python -m lab`, or `python -m lab run`): the whole lab in one command.

1. start Redis, QuestDB, MinIO, toxiproxy and the seamless coordinator on free ports;
2. a demo backfill: several SDK workers share one job's shards through the coordinator;
3. the CI load profile (locust, gated on the SLA budgets) against that data plane;
4. stop the data plane, then run the chaos suite (it starts its own servers per scenario);
5. write one report, ``reports/lab/report.md`` with PNG plots, and exit non-zero if any
   gate or invariant failed.

`python -m lab up` only brings the data plane up and keeps it running until Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lab.dataplane import DataPlane
from lab.servers import REPO_ROOT, ServerStartError

app = typer.Typer(help="The Seamless local lab.", no_args_is_help=False)
console = Console()
DEFAULT_DIRECTORY = REPO_ROOT / "reports" / "lab"


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """Without a command, run the whole lab."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(run)


def _stop_on_signal() -> threading.Event:
    """Ctrl-C and SIGTERM both just set an event, so shutdown runs in the main flow."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


@app.command()
def up() -> None:
    """Start Redis, QuestDB, MinIO and toxiproxy locally and keep them up until Ctrl-C."""
    stop = _stop_on_signal()
    plane = DataPlane()
    try:
        with console.status("starting redis, questdb, minio, toxiproxy ..."):
            plane.__enter__()
    except ServerStartError as exc:
        console.print(f"[red]lab: a server failed to start[/red]\n{exc}")
        raise typer.Exit(1) from None
    try:
        health = plane.health()
        table = Table("server", "endpoint", "healthy")
        for name, endpoints in plane.endpoints().items():
            detail = "\n".join(f"{key}: {value}" for key, value in endpoints.items())
            table.add_row(name, detail, "[green]yes[/green]" if health[name] else "[red]no[/red]")
        console.print(table)
        if not all(health.values()):
            raise typer.Exit(1)
        console.print("data plane up; press Ctrl-C to stop")
        stop.wait()
    finally:
        with console.status("stopping ..."):
            plane.__exit__(None, None, None)
        console.print("all servers stopped")


@app.command()
def run(
    run_time: Annotated[str, typer.Option(help="load duration (locust syntax)")] = "40s",
    report_dir: Annotated[Path, typer.Option(help="where the report goes")] = DEFAULT_DIRECTORY,
    preset: Annotated[str, typer.Option(help="SLA preset gating the load")] = "baseline",
    sla_targets: Annotated[
        Path | None, typer.Option(help="stricter target file for the load gate")
    ] = None,
    chaos: Annotated[bool, typer.Option(help="run the chaos suite")] = True,
    load: Annotated[bool, typer.Option(help="run the CI load profile")] = True,
) -> None:
    """Data plane + demo backfill + CI load profile + chaos suite, then one report."""
    from lab.full import run_lab

    ok = run_lab(
        console,
        report_dir=report_dir,
        run_time=run_time,
        preset=preset,
        sla_targets=sla_targets,
        with_chaos=chaos,
        with_load=load,
    )
    raise typer.Exit(0 if ok else 1)


if __name__ == "__main__":
    app()
