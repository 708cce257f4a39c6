"""`seamless config ...` commands.

`seamless config validate --config FILE --target
{schema,seamless,gateway,dagmanager,worldservice,all} [--offline] [--json]` prints one line
per check (`target  check  OK|WARN|ERROR  hint`) and exits 0 when nothing is an ERROR, 1
when something is, and 2 when a requested target's section is missing. `all` checks every
service section the file has (a QMTL service's config.yml holds only its own).
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from seamless.config.model import SECTION, ConfigDocument, read_document
from seamless.config.service_validation import SERVICE_TARGETS, validate_service
from seamless.config.validation import (
    SCHEMA_TARGET,
    SEAMLESS_TARGET,
    CheckResult,
    overall_status,
    results_as_json,
    validate_schema,
    validate_seamless,
)
from seamless.errors import ConfigError, ConfigSectionMissing

app = typer.Typer(help="config commands.", no_args_is_help=True)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_SECTION_MISSING = 2

_STYLES = {"OK": "green", "WARN": "yellow", "ERROR": "bold red"}


class Target(StrEnum):
    schema = "schema"
    seamless = "seamless"
    gateway = "gateway"
    dagmanager = "dagmanager"
    worldservice = "worldservice"
    all = "all"


@app.command("validate")
def validate(
    config: Annotated[Path, typer.Option("--config", "-c", help="The YAML config file to check.")],
    target: Annotated[Target, typer.Option("--target", "-t", help="What to check.")] = Target.all,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Contact nothing: connectivity checks become WARN."),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"status", "results": {target: {check: ...}}}.'),
    ] = False,
) -> None:
    """Check a config file: keys, types, profile rules and (unless --offline) that the
    coordinator, Redis, QuestDB and the artifact store answer; for gateway, dagmanager and
    worldservice their DSNs, ControlBus brokers and topic prefix, and that each answers."""
    results, code = run_validation(config, target, offline=offline)
    _print(results, as_json)
    raise typer.Exit(code)


def run_validation(path: Path, target: Target, *, offline: bool) -> tuple[list[CheckResult], int]:
    env = dict(os.environ)
    try:
        document = read_document(path)
    except ConfigError as exc:
        check = "yaml" if exc.key == "yaml" else "file"
        return [CheckResult(SCHEMA_TARGET, check, "ERROR", str(exc))], EXIT_ERROR

    results: list[CheckResult] = []
    source = str(path)
    if target in (Target.schema, Target.all):
        results.extend(
            validate_schema(document.data, env=env, config_dir=document.directory, source=source)
        )
    if target in (Target.seamless, Target.all):
        seamless, missing = _seamless_results(document, env=env, offline=offline)
        if missing:
            return [*results, *seamless], EXIT_SECTION_MISSING
        seen = {(r.check, r.hint) for r in results}
        # `all` already reported the section's schema problems under `schema`.
        results.extend(r for r in seamless if (r.check, r.hint) not in seen)
    for service in SERVICE_TARGETS:
        if target == Target.all and service not in document.data:
            continue
        if target in (Target(service), Target.all):
            if service not in document.data:
                absent = CheckResult(
                    service,
                    service,
                    "ERROR",
                    f"{path}: no '{service}' section (the bundle renders it into the "
                    f"{service}'s own config.yml)",
                )
                return [*results, absent], EXIT_SECTION_MISSING
            results.extend(validate_service(service, document.data, offline=offline, source=source))
    code = EXIT_ERROR if overall_status(results) == "error" else EXIT_OK
    return results, code


def _seamless_results(
    document: ConfigDocument, *, env: dict[str, str], offline: bool
) -> tuple[list[CheckResult], bool]:
    try:
        section = document.seamless_section()
    except ConfigSectionMissing as exc:
        return [CheckResult(SEAMLESS_TARGET, SECTION, "ERROR", str(exc))], True
    except ConfigError as exc:
        return [CheckResult(SEAMLESS_TARGET, SECTION, "ERROR", str(exc))], False
    results = validate_seamless(
        section,
        offline=offline,
        env=env,
        config_dir=document.directory,
        source=str(document.path),
    )
    return results, False


def _print(results: list[CheckResult], as_json: bool) -> None:
    if as_json:
        # Plain print: machine readers get exactly the JSON, never terminal markup.
        typer.echo(json.dumps(results_as_json(results), indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    if not results:
        return
    target_width = max(len(r.target) for r in results)
    check_width = max(len(r.check) for r in results)
    for r in results:
        line = Text(f"{r.target:<{target_width}}  {r.check:<{check_width}}  ")
        line.append(f"{r.severity:<5}", style=_STYLES[r.severity])
        line.append(f"  {r.hint}")
        console.print(line)
