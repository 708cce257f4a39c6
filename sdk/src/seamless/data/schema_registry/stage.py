"""The conformance pipeline's schema stage: each frame checked against its subject's
approved schema (the subject's latest version in the registry) in the configured mode.

- ``canary`` (default): never blocks. A violation, or a registry that cannot answer, is
  recorded in the report's ``schema`` diagnostics, logged (``seamless.schema.violation``)
  and counted in ``seamless_schema_validation_failures_total{subject,mode="canary"}``.
- ``strict``: the same, then `SchemaValidationError` (a conformance block: a backfill batch
  is not stored, its lease is failed; a fetch fails). A registry that cannot answer and no
  approved schema both block: strict never serves what it could not check.

The approved schema is cached for ``cache_ttl_s`` (a failed look-up for at most
``error_ttl_s``), so a frame costs a registry round trip at most once per TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from seamless.data.schema_registry.client import RegisteredSchema, SchemaRegistry
from seamless.data.schema_registry.schema import check_subject
from seamless.errors import SchemaRegistryError, SchemaValidationError
from seamless.logging import get_logger
from seamless.metrics import SeamlessMetrics

ValidationMode = Literal["canary", "strict"]
VALIDATION_MODES: tuple[ValidationMode, ...] = ("canary", "strict")
DEFAULT_SUBJECT = "seamless.bars"

log = get_logger("seamless.schema")


def default_subject(dataset: str = "bars", interval: int | None = None, world_id: str = "") -> str:
    """The subject a data spec maps to: ``{world}.{dataset}-{interval}`` (parts optional)."""
    name = dataset if interval is None else f"{dataset}-{interval}"
    return check_subject(f"{world_id}.{name}" if world_id else f"seamless.{name}")


@dataclass
class SchemaDiagnostics:
    subject: str
    mode: ValidationMode
    approved_version: int | None = None
    violations: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.violations) or self.error is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "mode": self.mode,
            "approved_version": self.approved_version,
            "violations": list(self.violations),
            "error": self.error,
        }

    def summary(self) -> str:
        if self.error is not None:
            return self.error
        return f"subject {self.subject!r} version {self.approved_version}: " + "; ".join(
            self.violations
        )


class SchemaStage:
    def __init__(
        self,
        registry: SchemaRegistry,
        *,
        subject: str = DEFAULT_SUBJECT,
        mode: ValidationMode = "canary",
        metrics: SeamlessMetrics | None = None,
        cache_ttl_s: float = 30.0,
        error_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in VALIDATION_MODES:
            raise ValueError(f"validation mode {mode!r}: expected 'canary' or 'strict'")
        self.registry = registry
        self.subject = check_subject(subject)
        self.mode: ValidationMode = mode
        self.metrics = metrics if metrics is not None else SeamlessMetrics.default()
        self.cache_ttl_s = cache_ttl_s
        self.error_ttl_s = min(error_ttl_s, cache_ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, RegisteredSchema | None, str | None] | None = None

    def approved(self) -> tuple[RegisteredSchema | None, str | None]:
        """The approved schema (or None if none is registered) and the look-up error."""
        now = self._clock()
        with self._lock:
            if self._cached is not None and now < self._cached[0]:
                return self._cached[1], self._cached[2]
        try:
            found, error = self.registry.latest(self.subject), None
            expires = now + self.cache_ttl_s
        except SchemaRegistryError as exc:
            found, error = None, str(exc)
            expires = now + self.error_ttl_s
        with self._lock:
            self._cached = (expires, found, error)
        return found, error

    def evaluate(self, frame_schema: Mapping[str, Any]) -> SchemaDiagnostics:
        diagnostics = SchemaDiagnostics(self.subject, self.mode)
        approved, error = self.approved()
        if error is not None:
            diagnostics.error = error
        elif approved is None:
            diagnostics.error = (
                f"no approved schema for subject {self.subject!r} in {self.registry.url}: "
                "register one (seamless schema register)"
            )
        else:
            diagnostics.approved_version = approved.version
            diagnostics.violations = approved.schema.frame_violations(frame_schema)
        return diagnostics

    def enforce(self, frame_schema: Mapping[str, Any], report: Any) -> SchemaDiagnostics:
        """Evaluate, record on `report.schema`, count and log a failure; raise in strict."""
        diagnostics = self.evaluate(frame_schema)
        report.schema = diagnostics
        if not diagnostics.failed:
            return diagnostics
        self.metrics.schema_validation_failures_total.labels(
            subject=self.subject, mode=self.mode
        ).inc()
        log.warning(
            "seamless.schema.violation",
            subject=self.subject,
            mode=self.mode,
            approved_version=diagnostics.approved_version,
            violations=diagnostics.violations,
            error=diagnostics.error,
            blocked=self.mode == "strict",
        )
        if self.mode == "strict":
            raise SchemaValidationError(
                report,
                f"strict schema validation blocks the frame: {diagnostics.summary()}",
            )
        return diagnostics


def stage_from_config(settings: Any, *, metrics: SeamlessMetrics | None = None) -> SchemaStage:
    """The stage a `SeamlessConfig` asks for: the remote registry at
    ``schema_registry_url`` if set, else an in-process one holding the production bar
    schema as version 1 of the subject; ``validation_mode``; ``schema_subject`` or the
    default subject."""
    from seamless.data.bars import BAR_SCHEMA
    from seamless.data.schema_registry.client import InMemorySchemaRegistry, RemoteSchemaRegistry
    from seamless.data.schema_registry.schema import BarSchema

    subject = settings.schema_subject or DEFAULT_SUBJECT
    registry: SchemaRegistry
    if settings.schema_registry_url:
        registry = RemoteSchemaRegistry(
            settings.schema_registry_url, timeout_s=settings.coordinator_timeout_seconds
        )
    else:
        registry = InMemorySchemaRegistry()
        registry.register(subject, BarSchema.from_dtypes(BAR_SCHEMA))
    return SchemaStage(registry, subject=subject, mode=settings.validation_mode, metrics=metrics)
