"""`make lab`: bring the local data plane up, show its endpoints and health, and keep it
running until Ctrl-C (or SIGTERM), then stop every server."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer
from rich.console import Console
from rich.table import Table

from lab.dataplane import DataPlane
from lab.servers import ServerStartError

app = typer.Typer(help="The Seamless local lab.", no_args_is_help=False)
console = Console()


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


if __name__ == "__main__":
    app()
