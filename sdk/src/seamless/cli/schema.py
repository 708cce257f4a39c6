"""`seamless schema ...`: the canary → strict rollout of seed 004, step by step.

``register`` publishes a subject's new version (refused if it breaks the approved one,
unless --force) and opens a canary window in the audit log; ``show`` and ``check`` read and
compare; ``promote`` records the move to strict, refused while the canary window counted
failures (read from a seamless process's /metrics) unless --force; ``rollback`` returns a
subject to canary, optionally tombstoning (deleting) a bad version; ``audit`` lists the
records. The audit log goes to the artifact store when --config configures one
(artifact_endpoint + artifact_bucket, credentials from AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY), else to --audit-file.

Every failure is one line naming what was wrong, exit 1; never a trace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from seamless.config.model import ENV_VARS, check_http_url, mask_url_password
from seamless.data.schema_registry.audit import (
    ArtifactAuditStore,
    AuditRecord,
    AuditStore,
    FileAuditStore,
    bundle_sha,
    canary_window_start,
    current_mode,
)
from seamless.data.schema_registry.client import RemoteSchemaRegistry
from seamless.data.schema_registry.schema import MAX_SCHEMA_BYTES, BarSchema, compatibility
from seamless.errors import ConfigError, SchemaRegistryError

app = typer.Typer(help="schema registry governance (canary -> strict).", no_args_is_help=True)

FAILURE_METRIC = "seamless_schema_validation_failures_total"
MAX_METRICS_BYTES = 4 * 1024 * 1024
DEFAULT_AUDIT_FILE = Path("schema-audit.jsonl")

RegistryOpt = Annotated[
    str,
    typer.Option(
        "--registry",
        envvar=ENV_VARS["schema_registry_url"],
        help="Confluent-compatible registry URL (env QMTL_SCHEMA_REGISTRY_URL).",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file whose artifact store keeps the audit log."),
]
AuditFileOpt = Annotated[
    Path, typer.Option("--audit-file", help="Local audit log when no artifact store is set.")
]
NoteOpt = Annotated[str, typer.Option("--note", help="Why (kept in the audit record).")]


class _Fail(Exception):
    """A user-facing failure: printed as one line, exit 1."""


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (_Fail, SchemaRegistryError, ConfigError, ValueError) as exc:
        Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from None


def _registry(url: str) -> RemoteSchemaRegistry:
    if not url:
        raise _Fail("no registry: pass --registry URL or set QMTL_SCHEMA_REGISTRY_URL")
    try:
        check_http_url(url)
    except ValueError as exc:
        raise _Fail(f"--registry {mask_url_password(url)!r}: {exc}") from None
    return RemoteSchemaRegistry(url)


def _read_schema(path: Path) -> BarSchema:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SCHEMA_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Fail(f"--schema {path}: cannot read it ({exc})") from None
    return BarSchema.from_json(text, origin=f"--schema {path}")


def _audit_store(config: Path | None, audit_file: Path) -> AuditStore:
    if config is None:
        return FileAuditStore(audit_file)
    from seamless.config.loading import load_config
    from seamless.data.artifacts import s3_client

    settings = load_config(config, env=dict(os.environ)).settings
    if not (settings.artifact_endpoint and settings.artifact_bucket):
        return FileAuditStore(audit_file)
    s3 = s3_client(
        settings.artifact_endpoint,
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )
    return ArtifactAuditStore(s3, settings.artifact_bucket)


def canary_failures(metrics_url: str, subject: str) -> float:
    """The canary failure count of `subject` on a seamless process's /metrics page."""
    shown = mask_url_password(metrics_url)
    try:
        with httpx.stream("GET", metrics_url, timeout=5.0) as response:
            raw = b""
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) > MAX_METRICS_BYTES:
                    raise _Fail(f"--metrics-url {shown}: page larger than {MAX_METRICS_BYTES} B")
            status = response.status_code
    except httpx.HTTPError as exc:
        raise _Fail(f"--metrics-url {shown}: unreachable ({type(exc).__name__})") from None
    if status != 200:
        raise _Fail(f"--metrics-url {shown}: answered HTTP {status}")
    total = 0.0
    for family in text_string_to_metric_families(raw.decode("utf-8", "replace")):
        for sample in family.samples:
            if (
                sample.name == FAILURE_METRIC
                and sample.labels.get("subject") == subject
                and sample.labels.get("mode") == "canary"
            ):
                total += sample.value
    return total


@app.command("register")
def register(
    subject: Annotated[str, typer.Argument(help="Subject, e.g. seamless.bars-60.")],
    schema: Annotated[Path, typer.Option("--schema", help="JSON Schema file of the bars.")],
    registry: RegistryOpt = "",
    note: NoteOpt = "",
    metrics_url: Annotated[
        str | None, typer.Option("--metrics-url", help="/metrics of a seamless process.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Register a breaking change.")] = False,
    config: ConfigOpt = None,
    audit_file: AuditFileOpt = DEFAULT_AUDIT_FILE,
) -> None:
    """Publish a new version (canary starts): compatibility-checked against the approved one."""
    with _errors():
        client = _registry(registry)
        candidate = _read_schema(schema)
        approved = client.latest(subject)
        if approved is not None:
            verdict = compatibility(approved.schema, candidate)
            if not verdict.compatible and not force:
                raise _Fail(
                    f"{subject}: breaks version {approved.version}: "
                    + "; ".join(verdict.breaking)
                    + " (publish a compatible schema, or --force)"
                )
        registered = client.register(subject, candidate)
        baseline = canary_failures(metrics_url, subject) if metrics_url else None
        record = AuditRecord(
            action="register",
            subject=subject,
            version=registered.version,
            bundle_sha=bundle_sha(candidate),
            mode="canary",
            note=note[:500],
            window_start=time.time(),
            canary_failures=baseline,
            forced=force,
        )
        where = _audit_store(config, audit_file).append(record)
        typer.echo(
            f"{subject}: version {registered.version} (id {registered.id}, "
            f"{record.bundle_sha}) registered; canary window open; audit: {where}"
        )


@app.command("show")
def show(
    subject: Annotated[str, typer.Argument()],
    registry: RegistryOpt = "",
    version: Annotated[int | None, typer.Option("--version", help="Default: latest.")] = None,
) -> None:
    """Print a subject's approved (latest) or given version."""
    with _errors():
        client = _registry(registry)
        found = client.latest(subject) if version is None else client.version(subject, version)
        if found is None:
            raise _Fail(f"{subject}: no such subject or version in {client.shown_url}")
        table = Table(title=f"{subject} version {found.version} (id {found.id})")
        for column in ("field", "type", "required"):
            table.add_column(column)
        for f in found.schema.fields:
            table.add_row(f.name, f.type, "yes" if f.required else "no")
        Console(highlight=False).print(table)
        typer.echo(f"bundle {bundle_sha(found.schema)}; versions {client.versions(subject)}")


@app.command("check")
def check(
    subject: Annotated[str, typer.Argument()],
    schema: Annotated[Path, typer.Option("--schema")],
    registry: RegistryOpt = "",
) -> None:
    """Would this schema be a compatible next version? Exit 1 if it breaks the approved one."""
    with _errors():
        client = _registry(registry)
        approved = client.latest(subject)
        candidate = _read_schema(schema)
        if approved is None:
            typer.echo(f"{subject}: no approved version yet; any schema is compatible")
            return
        verdict = compatibility(approved.schema, candidate)
        added = f"; added optional: {', '.join(verdict.added)}" if verdict.added else ""
        if not verdict.compatible:
            raise _Fail(
                f"{subject}: breaks version {approved.version}: " + "; ".join(verdict.breaking)
            )
        typer.echo(f"{subject}: compatible with version {approved.version}{added}")


@app.command("promote")
def promote(
    subject: Annotated[str, typer.Argument()],
    note: NoteOpt,
    registry: RegistryOpt = "",
    metrics_url: Annotated[
        str | None,
        typer.Option("--metrics-url", help="/metrics of the canary process (failure count)."),
    ] = None,
    min_window_hours: Annotated[
        float, typer.Option("--min-window-hours", help="Canary must have run this long.")
    ] = 24.0,
    force: Annotated[bool, typer.Option("--force", help="Promote despite failures.")] = False,
    config: ConfigOpt = None,
    audit_file: AuditFileOpt = DEFAULT_AUDIT_FILE,
) -> None:
    """Record the move to strict; refused while the canary window shows failures."""
    with _errors():
        client = _registry(registry)
        approved = client.latest(subject)
        if approved is None:
            raise _Fail(f"{subject}: nothing to promote: no version in {client.shown_url}")
        store = _audit_store(config, audit_file)
        records = store.records(subject)
        if current_mode(records) == "strict":
            raise _Fail(f"{subject}: already strict (see `seamless schema audit {subject}`)")
        opened = canary_window_start(records)
        now = time.time()
        start = opened.window_start if opened and opened.window_start else None
        problems = []
        failures: float | None = None
        if start is None:
            problems.append("no canary window in the audit log (register the version first)")
        elif (now - start) / 3600 < min_window_hours:
            problems.append(
                f"canary ran {(now - start) / 3600:.1f} h, less than {min_window_hours:g} h"
            )
        if metrics_url is None:
            problems.append("no --metrics-url: cannot show the canary window had no failures")
        else:
            failures = canary_failures(metrics_url, subject)
            baseline = opened.canary_failures if opened and opened.canary_failures else 0.0
            failures -= baseline
            if failures > 0:
                problems.append(f"{failures:.0f} canary failure(s) in the window")
        if problems and not force:
            raise _Fail(f"{subject}: not promoted: " + "; ".join(problems) + " (or --force)")
        record = AuditRecord(
            action="promote",
            subject=subject,
            version=approved.version,
            bundle_sha=bundle_sha(approved.schema),
            mode="strict",
            note=note[:500],
            at=now,
            window_start=start,
            window_end=now,
            canary_failures=failures,
            forced=bool(problems),
        )
        where = store.append(record)
        typer.echo(
            f"{subject}: version {approved.version} promoted to strict; audit: {where}\n"
            f"next: set validation_mode: strict (or {ENV_VARS['validation_mode']}=strict) "
            'and restart; watch the failure counter with mode="strict"'
        )


@app.command("rollback")
def rollback(
    subject: Annotated[str, typer.Argument()],
    note: NoteOpt,
    registry: RegistryOpt = "",
    tombstone: Annotated[
        int | None, typer.Option("--tombstone", help="Delete this (bad) version.")
    ] = None,
    config: ConfigOpt = None,
    audit_file: AuditFileOpt = DEFAULT_AUDIT_FILE,
) -> None:
    """Return a subject to canary; optionally tombstone a bad version until a fix is out."""
    with _errors():
        client = _registry(registry)
        if tombstone is not None:
            client.delete_version(subject, tombstone)
        approved = client.latest(subject)
        record = AuditRecord(
            action="rollback",
            subject=subject,
            version=approved.version if approved else None,
            bundle_sha=bundle_sha(approved.schema) if approved else None,
            mode="canary",
            note=(note + (f" (tombstoned version {tombstone})" if tombstone else ""))[:500],
            window_start=time.time(),
        )
        where = _audit_store(config, audit_file).append(record)
        now = f"version {approved.version}" if approved else "no version"
        typer.echo(
            f"{subject}: back to canary, approved {now}; audit: {where}\n"
            f"next: set validation_mode: canary (or {ENV_VARS['validation_mode']}=canary) "
            "and restart"
        )


@app.command("audit")
def audit(
    subject: Annotated[str | None, typer.Argument()] = None,
    config: ConfigOpt = None,
    audit_file: AuditFileOpt = DEFAULT_AUDIT_FILE,
) -> None:
    """List the audit records (all subjects, or one)."""
    with _errors():
        store = _audit_store(config, audit_file)
        records = store.records(subject)
        table = Table(title=f"schema audit ({store.where})")
        for column in ("at (UTC)", "subject", "action", "version", "mode", "failures", "note"):
            table.add_column(column)
        for r in records:
            table.add_row(
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.at)),
                r.subject,
                r.action + (" (forced)" if r.forced else ""),
                str(r.version),
                r.mode,
                "" if r.canary_failures is None else f"{r.canary_failures:.0f}",
                r.note,
            )
        Console(highlight=False).print(table)
