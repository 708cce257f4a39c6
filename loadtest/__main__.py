"""`python -m loadtest`: run a load profile against a target file (Pulumi stack outputs or an
SDK config), or, without one, against Redis, QuestDB and the coordinator started locally for
the run. Exits with the gate's verdict."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from loadtest.run import run_profile

app = typer.Typer(help="Run a load profile, gated on SLA budgets.", add_completion=False)


@app.command()
def main(
    profile: Annotated[str, typer.Option(help="ci, soak or ramp")] = "ci",
    target_file: Annotated[Path | None, typer.Option(help="stack outputs / SDK config")] = None,
    report: Annotated[Path, typer.Option(help="the gate's JSON report")] = Path(
        "reports/load/report.json"
    ),
    run_time: Annotated[str | None, typer.Option(help="override the profile's run time")] = None,
    sla_preset: Annotated[str, typer.Option(help="SLA preset whose budgets gate")] = "baseline",
    sla_targets: Annotated[Path | None, typer.Option(help="stricter target file")] = None,
) -> None:
    extra = ["--sla-preset", sla_preset]
    if sla_targets is not None:
        extra += ["--sla-targets", str(sla_targets)]
    report.parent.mkdir(parents=True, exist_ok=True)
    if target_file is not None:
        run = run_profile(
            profile,
            target_file,
            report,
            run_time=run_time,
            extra=extra,
            stream=True,
            timeout_s=24 * 3600,
        )
        raise typer.Exit(run.exit_code)
    from loadtest.local import local_plane

    with local_plane() as target, tempfile.TemporaryDirectory() as tmp:
        file = target.write(Path(tmp) / "target.json")
        run = run_profile(
            profile,
            file,
            report,
            run_time=run_time,
            extra=extra,
            stream=True,
            timeout_s=24 * 3600,
        )
    raise typer.Exit(run.exit_code)


if __name__ == "__main__":
    app()
