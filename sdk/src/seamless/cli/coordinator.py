"""`seamless coordinator ...` commands: `serve` wires settings -> app -> uvicorn, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from seamless.errors import ConfigError

app = typer.Typer(help="The backfill coordinator service.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The backfill coordinator service."""


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="COORDINATOR_CONFIG",
            help="YAML/JSON settings file; environment variables override it.",
        ),
    ] = None,
) -> None:
    """Serve the coordinator: HTTP on BIND_ADDR, metrics on PROMETHEUS_PORT."""
    import uvicorn

    from seamless.coordination.protocol import SERVICE_KEEP_ALIVE_SECONDS
    from seamless.coordinator import create_app, load_settings
    from seamless.coordinator.logs import configure_logging

    try:
        settings = load_settings(config_file=config)
    except ConfigError as exc:
        Console(stderr=True).print(f"[bold red]invalid coordinator settings:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.coordinator_id)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=SERVICE_KEEP_ALIVE_SECONDS,
    )
