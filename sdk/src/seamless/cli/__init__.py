"""The `seamless` command: each sub-command group lives in its own module."""

from __future__ import annotations

import typer

from seamless.cli import config as config_cli
from seamless.cli import coordinator as coordinator_cli
from seamless.cli import lease as lease_cli
from seamless.cli import schema as schema_cli

app = typer.Typer(help="Seamless data plane tools.", no_args_is_help=True)
app.add_typer(config_cli.app, name="config")
app.add_typer(lease_cli.app, name="lease")
app.add_typer(coordinator_cli.app, name="coordinator")
app.add_typer(schema_cli.app, name="schema")


def main() -> None:
    app()
