"""Prometheus metrics of the data provider, under the names and labels QMTL's dashboards and
alerts already use.

All metrics of one `SeamlessMetrics` live on one `CollectorRegistry`: the process-wide
default registry in production (`SeamlessMetrics.default()`), a fresh private one in tests
(`SeamlessMetrics(CollectorRegistry())`) so a test can read exact counts without seeing
another test's traffic.

Label values such as node_id come from callers, so every family labelled by them is a
`BoundedSeries`: at most `max_series` label sets of its own (1,000 by default). Counting
families (counters, histograms) fold further label sets into one series whose key labels
read `_other`, so totals stay right and no series ever resets; gauges forget their least
recently set series instead. Each label value is cut to `MAX_LABEL_VALUE_LENGTH`
characters (a hash of the whole value keeps long values apart).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import ClassVar, Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

_LATENCY_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SERIES = ["node_id", "interval", "world_id"]

# Label values that come from callers' keys and ids; the other labels (outcome, phase,
# reason, ...) take a few values the code chooses, and are kept when a series is folded.
KEY_LABELS = frozenset({"node_id", "interval", "world_id", "lease_key"})
OTHER = "_other"
MAX_LABEL_VALUE_LENGTH = 128
DEFAULT_MAX_SERIES = 1000

M = TypeVar("M", bound=MetricWrapperBase)


def bounded_label_value(value: object) -> str:
    """`value` as a label value of at most MAX_LABEL_VALUE_LENGTH characters."""
    text = str(value)
    if len(text) <= MAX_LABEL_VALUE_LENGTH:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return f"{text[: MAX_LABEL_VALUE_LENGTH - len(digest) - 1]}~{digest}"


class BoundedSeries(Generic[M]):
    """A labelled metric family that keeps at most `max_series` label sets of its own.

    `labels()` answers as the metric's own does. Past the cap, a counter or histogram
    counts the new label set in its overflow series (key labels `_other`): removing a
    counting series would reset it for scrapers and lose its total. A gauge drops its least
    recently set series instead (`remove`), as a gauge's value stands alone.
    """

    def __init__(self, metric: M, max_series: int) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be >= 1, got {max_series}")
        self.metric = metric
        self.max_series = max_series
        self._names: tuple[str, ...] = tuple(metric._labelnames)
        self._evicts = isinstance(metric, Gauge)
        self._own: OrderedDict[tuple[str, ...], M] = OrderedDict()
        self._folded: dict[tuple[str, ...], M] = {}
        self._lock = threading.Lock()

    def labels(self, *values: object, **named: object) -> M:
        if named:
            values = tuple(named[name] for name in self._names)
        key = tuple(bounded_label_value(value) for value in values)
        with self._lock:
            child = self._own.get(key)
            if child is not None:
                if self._evicts:
                    self._own.move_to_end(key)
                return child
            if len(self._own) >= self.max_series:
                if not self._evicts:
                    return self._overflow(key)
                oldest, _ = self._own.popitem(last=False)
                self.metric.remove(*oldest)
            child = self._own[key] = self.metric.labels(*key)
            return child

    def _overflow(self, key: tuple[str, ...]) -> M:
        folded = tuple(
            OTHER if name in KEY_LABELS else value
            for name, value in zip(self._names, key, strict=True)
        )
        child = self._folded.get(folded)
        if child is None:
            child = self._folded[folded] = self.metric.labels(*folded)
        return child

    def series_count(self) -> int:
        """Series of this family now exported: its own and the overflow ones."""
        with self._lock:
            return len(self._own) + len(self._folded)


class SeamlessMetrics:
    _default: ClassVar[SeamlessMetrics | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, registry: CollectorRegistry | None = None, max_series: int = DEFAULT_MAX_SERIES
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # backfill
        self.backfill_completion_ratio = BoundedSeries(
            Gauge(
                "backfill_completion_ratio",
                "Completion ratio reported by the distributed backfill coordinator",
                ["node_id", "interval", "lease_key"],
                registry=r,
            ),
            max_series,
        )
        self.backfill_jobs_in_progress = Gauge(
            "backfill_jobs_in_progress", "Number of active backfill jobs", registry=r
        )
        self.backfill_failure_total = BoundedSeries(
            Counter(
                "backfill_failure_total",
                "Backfill shards that ultimately failed",
                ["node_id", "interval"],
                registry=r,
            ),
            max_series,
        )
        self.backfill_retry_total = BoundedSeries(
            Counter(
                "backfill_retry_total",
                "Backfill fetch retry attempts",
                ["node_id", "interval"],
                registry=r,
            ),
            max_series,
        )
        self.backfill_abandoned_total = BoundedSeries(
            Counter(
                "backfill_abandoned_total",
                "Backfill shards abandoned because their lease was lost to another holder",
                ["node_id", "interval"],
                registry=r,
            ),
            max_series,
        )
        self.backfill_shards_total = BoundedSeries(
            Counter(
                "backfill_shards_total",
                "Backfill shards by outcome (completed, skipped_completed, failed, abandoned)",
                ["node_id", "interval", "outcome"],
                registry=r,
            ),
            max_series,
        )
        # SLA
        self.sla_deadline_seconds = BoundedSeries(
            Histogram(
                "seamless_sla_deadline_seconds",
                "Observed SLA phase durations for Seamless data requests",
                ["node_id", "phase"],
                buckets=_SECONDS_BUCKETS,
                registry=r,
            ),
            max_series,
        )
        self.phase_ms = {
            phase: BoundedSeries(
                Histogram(
                    f"seamless_{phase}_ms",
                    f"Seamless {phase.replace('_', ' ')} latency (milliseconds)",
                    _SERIES,
                    buckets=_LATENCY_MS_BUCKETS,
                    registry=r,
                ),
                max_series,
            )
            for phase in ("storage_wait", "backfill_wait", "live_wait", "total")
        }
        self.coverage_ratio = BoundedSeries(
            Gauge(
                "coverage_ratio",
                "Ratio of bars delivered vs requested for Seamless responses",
                _SERIES,
                registry=r,
            ),
            max_series,
        )
        self.live_staleness_seconds = BoundedSeries(
            Gauge(
                "live_staleness_seconds",
                "Observed live data staleness for Seamless responses (seconds)",
                _SERIES,
                registry=r,
            ),
            max_series,
        )
        self.partial_fill_returns = BoundedSeries(
            Counter(
                "partial_fill_returns",
                "Seamless responses downgraded to PARTIAL_FILL",
                [*_SERIES, "reason"],
                registry=r,
            ),
            max_series,
        )
        self.domain_gate_holds = BoundedSeries(
            Counter(
                "domain_gate_holds",
                "Seamless responses downgraded to HOLD",
                [*_SERIES, "reason"],
                registry=r,
            ),
            max_series,
        )
        # conformance
        self.conformance_flag_total = BoundedSeries(
            Counter(
                "seamless_conformance_flag_total",
                "Conformance flags emitted by Seamless normalization",
                [*_SERIES, "flag_type"],
                registry=r,
            ),
            max_series,
        )
        self.conformance_warning_total = BoundedSeries(
            Counter(
                "seamless_conformance_warning_total",
                "Warnings recorded by the Seamless conformance pipeline",
                _SERIES,
                registry=r,
            ),
            max_series,
        )
        self.schema_validation_failures_total = Counter(
            "seamless_schema_validation_failures_total",
            "Schema compatibility failures",
            ["subject", "mode"],
            registry=r,
        )
        # cache
        self.cache_hit_total = BoundedSeries(
            Counter(
                "seamless_cache_hit_total", "Seamless in-memory cache hits", _SERIES, registry=r
            ),
            max_series,
        )
        self.cache_miss_total = BoundedSeries(
            Counter(
                "seamless_cache_miss_total", "Seamless in-memory cache misses", _SERIES, registry=r
            ),
            max_series,
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
        self.artifact_publish_latency_ms = BoundedSeries(
            Histogram(
                "artifact_publish_latency_ms",
                "Latency of artifact publication (milliseconds)",
                _SERIES,
                buckets=_LATENCY_MS_BUCKETS,
                registry=r,
            ),
            max_series,
        )
        self.artifact_bytes_written = BoundedSeries(
            Counter(
                "artifact_bytes_written",
                "Bytes written by Seamless artifact publications",
                _SERIES,
                registry=r,
            ),
            max_series,
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
