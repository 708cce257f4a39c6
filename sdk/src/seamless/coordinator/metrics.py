"""Prometheus metrics of the coordinator, on a registry of its own (one per app, so tests can
run several apps in one process and read exact values).

`backfill_completion_ratio{node_id,interval,lease_key}` keeps the name and labels QMTL's
dashboards and its "stuck lease" alert use; its label values come from the QMTL key format
``{node_id}:{interval}:{start}:{end}:{world_id}:{as_of}``.

Lease keys are the caller's, so every family labelled from them is a `BoundedSeries` of
at most `max_series` label sets (COORDINATOR_MAX_METRIC_SERIES): the counters fold further
(node_id, interval) pairs into node_id="_other",interval="_other", the ratio gauge keeps the
most recently set keys. The other labels (route, status, outcome, operation) take values
the code chooses.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from seamless.metrics import BoundedSeries

# Series per key-labelled family: with 128-character label values (512-character keys), the
# five such families export at most about 160 KB, so /metrics stays under 200 KB however
# many keys callers send (about 45 KB for QMTL-shaped keys).
DEFAULT_MAX_SERIES = 50
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def key_labels(key: str) -> tuple[str, str]:
    """(node_id, interval) of a QMTL lease key; 'unknown' for missing parts, as QMTL does."""
    parts = key.split(":", 2)
    node_id = parts[0] or "unknown"
    interval = parts[1] if len(parts) > 1 and parts[1] else "unknown"
    return node_id, interval


class CoordinatorMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, max_series: int = DEFAULT_MAX_SERIES
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "seamless_coordinator_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "seamless_coordinator_request_seconds",
            "HTTP request handling time by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.claims = Counter(
            "seamless_coordinator_claims_total",
            "Claims by outcome (granted, held, completed, failed)",
            ["outcome"],
            registry=r,
        )
        self.expiries = BoundedSeries(
            Counter(
                "seamless_coordinator_lease_expiries_total",
                "Leases whose holder let them run out (each counted once across replicas)",
                ["node_id", "interval"],
                registry=r,
            ),
            max_series,
        )
        self.stale = Counter(
            "seamless_coordinator_stale_rejections_total",
            "renew/complete/fail refused because the token is not the live lease",
            ["operation"],
            registry=r,
        )
        self.replays = Counter(
            "seamless_coordinator_replays_total",
            "Retried claim/complete/fail answered as the first request was (nothing changed)",
            ["operation"],
            registry=r,
        )
        self.completed = BoundedSeries(
            Counter(
                "seamless_coordinator_completed_total",
                "Keys completed",
                ["node_id", "interval"],
                registry=r,
            ),
            max_series,
        )
        self.failed = BoundedSeries(
            Counter(
                "seamless_coordinator_failed_total",
                "Leases given back with a failure",
                ["node_id", "interval"],
                registry=r,
            ),
            max_series,
        )
        self.parked = BoundedSeries(
            Counter(
                "seamless_coordinator_parked_total",
                "Keys parked as failed after too many attempts",
                ["node_id", "interval"],
                registry=r,
            ),
            max_series,
        )
        self.rate_limited = Counter(
            "seamless_coordinator_rate_limited_total",
            "Requests refused with 429",
            registry=r,
        )
        self.completion_ratio = BoundedSeries(
            Gauge(
                "backfill_completion_ratio",
                "Completion ratio of the job a lease key belongs to (1.0 for a lone key)",
                ["node_id", "interval", "lease_key"],
                registry=r,
            ),
            max_series,
        )
        self.ledger_pending = Gauge(
            "seamless_coordinator_ledger_pending",
            "Ledger rows buffered for QuestDB",
            registry=r,
        )
        self.ledger_written = Counter(
            "seamless_coordinator_ledger_written_total",
            "Ledger rows written to QuestDB",
            registry=r,
        )
        self.ledger_dropped = Counter(
            "seamless_coordinator_ledger_dropped_total",
            "Ledger rows dropped because the buffer was full while QuestDB was unreachable",
            registry=r,
        )
        self.ledger_errors = Counter(
            "seamless_coordinator_ledger_write_errors_total",
            "Failed attempts to write ledger rows to QuestDB",
            registry=r,
        )

    def set_completion_ratio(self, key: str, ratio: float) -> None:
        self.completion_ratio.labels(*key_labels(key), key).set(ratio)
