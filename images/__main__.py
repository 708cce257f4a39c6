"""`python -m images [--stack partial]`: build the stack's local images, print what was
built or found cached, with times and sizes, and write reports/images/build.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from images.build import ROOT_DIR, BuildError, build_stack

app = typer.Typer(add_completion=False, help="Build the stack's images locally.")


@app.command()
def main(
    stack: Annotated[str, typer.Option(help="stack file Pulumi.<stack>.yaml")] = "partial",
    report: Annotated[Path, typer.Option(help="JSON report")] = ROOT_DIR
    / "reports"
    / "images"
    / "build.json",
) -> None:
    try:
        builder = build_stack(stack)
    except BuildError as exc:
        print(f"images: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    rows = {k: vars(v) for k, v in builder.results.items()}
    for key, row in rows.items():
        state = "built" if row["built"] else "cached"
        print(f"{key:22} {row['ref']:52} {state:6} {row['seconds']:7.1f}s {row['size_mb']:8.1f} MB")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    app()
