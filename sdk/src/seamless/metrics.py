"""Prometheus metrics of the data provider, under the names and labels QMTL's dashboards and
alerts already use.

All metrics of one `SeamlessMetrics` live on one `CollectorRegistry`: the process-wide
default registry in production (`SeamlessMetrics.default()`), a fresh private one in tests
(`SeamlessMetrics(CollectorRegistry())`) so a test can read exact counts without seeing
another test's traffic.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SERIES = ["node_id", "interval", "world_id"]


class SeamlessMetrics:
    _default: ClassVar[SeamlessMetrics | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # backfill
        self.backfill_completion_ratio = Gauge(
            "backfill_completion_ratio",
            "Completion ratio reported by the distributed backfill coordinator",
            ["node_id", "interval", "lease_key"],
            registry=r,
        )
        self.backfill_jobs_in_progress = Gauge(
            "backfill_jobs_in_progress", "Number of active backfill jobs", registry=r
        )
        self.backfill_failure_total = Counter(
            "backfill_failure_total",
            "Backfill shards that ultimately failed",
            ["node_id", "interval"],
            registry=r,
        )
        self.backfill_retry_total = Counter(
            "backfill_retry_total",
            "Backfill fetch retry attempts",
            ["node_id", "interval"],
            registry=r,
        )
        self.backfill_abandoned_total = Counter(
            "backfill_abandoned_total",
            "Backfill shards abandoned because their lease was lost to another holder",
            ["node_id", "interval"],
            registry=r,
        )
        self.backfill_shards_total = Counter(
            "backfill_shards_total",
            "Backfill shards by outcome (completed, skipped_completed, failed, abandoned)",
            ["node_id", "interval", "outcome"],
            registry=r,
        )
        # SLA
        self.sla_deadline_seconds = Histogram(
            "seamless_sla_deadline_seconds",
            "Observed SLA phase durations for Seamless data requests",
            ["node_id", "phase"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.phase_ms = {
            phase: Histogram(
                f"seamless_{phase}_ms",
                f"Seamless {phase.replace('_', ' ')} latency (milliseconds)",
                _SERIES,
                buckets=_LATENCY_MS_BUCKETS,
                registry=r,
            )
            for phase in ("storage_wait", "backfill_wait", "live_wait", "total")
        }
        self.coverage_ratio = Gauge(
            "coverage_ratio",
            "Ratio of bars delivered vs requested for Seamless responses",
            _SERIES,
            registry=r,
        )
        self.live_staleness_seconds = Gauge(
            "live_staleness_seconds",
            "Observed live data staleness for Seamless responses (seconds)",
            _SERIES,
            registry=r,
        )
        self.partial_fill_returns = Counter(
            "partial_fill_returns",
            "Seamless responses downgraded to PARTIAL_FILL",
            [*_SERIES, "reason"],
            registry=r,
        )
        self.domain_gate_holds = Counter(
            "domain_gate_holds",
            "Seamless responses downgraded to HOLD",
            [*_SERIES, "reason"],
            registry=r,
        )
        # conformance
        self.conformance_flag_total = Counter(
            "seamless_conformance_flag_total",
            "Conformance flags emitted by Seamless normalization",
            [*_SERIES, "flag_type"],
            registry=r,
        )
        self.conformance_warning_total = Counter(
            "seamless_conformance_warning_total",
            "Warnings recorded by the Seamless conformance pipeline",
            _SERIES,
            registry=r,
        )
        self.schema_validation_failures_total = Counter(
            "seamless_schema_validation_failures_total",
            "Schema compatibility failures",
            ["subject", "mode"],
            registry=r,
        )
        # cache
        self.cache_hit_total = Counter(
            "seamless_cache_hit_total", "Seamless in-memory cache hits", _SERIES, registry=r
        )
        self.cache_miss_total = Counter(
            "seamless_cache_miss_total", "Seamless in-memory cache misses", _SERIES, registry=r
        )
        # artifacts
        self.artifact_publish_total = Counter(
            "seamless_artifact_publish_total",
            "Artifact publications by outcome (published, failed, dropped)",
            ["outcome"],
            registry=r,
        )
        self.artifact_publish_retry_total = Counter(
            "seamless_artifact_publish_retry_total", "Artifact publish retries", registry=r
        )
        self.artifact_publish_pending = Gauge(
            "seamless_artifact_publish_pending",
            "Artifacts queued for publication and not yet published",
            registry=r,
        )
        self.artifact_publish_latency_ms = Histogram(
            "artifact_publish_latency_ms",
            "Latency of artifact publication (milliseconds)",
            _SERIES,
            buckets=_LATENCY_MS_BUCKETS,
            registry=r,
        )
        self.artifact_bytes_written = Counter(
            "artifact_bytes_written",
            "Bytes written by Seamless artifact publications",
            _SERIES,
            registry=r,
        )

    @classmethod
    def default(cls) -> SeamlessMetrics:
        """The process-wide instance on prometheus_client's global registry."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(REGISTRY)
            return cls._default

    def observe_phase(
        self, *, node_id: str, interval: int, world_id: str, phase: str, duration_ms: float
    ) -> None:
        self.sla_deadline_seconds.labels(node_id=node_id, phase=phase).observe(duration_ms / 1000)
        hist = self.phase_ms.get(phase)
        if hist is not None:
            hist.labels(node_id=node_id, interval=str(interval), world_id=world_id).observe(
                duration_ms
            )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent): handy for tests and the CLI."""
        got = self.registry.get_sample_value(name, labels or {})
        return 0.0 if got is None else got
