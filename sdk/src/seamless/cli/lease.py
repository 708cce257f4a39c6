"""`seamless lease ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="lease commands.", no_args_is_help=True)
