"""Prometheus metrics of the coordinator, on a registry of its own (one per app, so tests can
run several apps in one process and read exact values).

`backfill_completion_ratio{node_id,interval,lease_key}` keeps the name and labels QMTL's
dashboards and its "stuck lease" alert use; its label values come from the QMTL key format
``{node_id}:{interval}:{start}:{end}:{world_id}:{as_of}``. One series per key is unbounded
over time, so only the most recent `max_ratio_series` keys keep a series.
"""

from __future__ import annotations

from collections import OrderedDict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def key_labels(key: str) -> tuple[str, str]:
    """(node_id, interval) of a QMTL lease key; 'unknown' for missing parts, as QMTL does."""
    parts = key.split(":", 2)
    node_id = parts[0] or "unknown"
    interval = parts[1] if len(parts) > 1 and parts[1] else "unknown"
    return node_id, interval


class CoordinatorMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, max_ratio_series: int = 10_000
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
        self.expiries = Counter(
            "seamless_coordinator_lease_expiries_total",
            "Leases whose holder let them run out (each counted once across replicas)",
            ["node_id", "interval"],
            registry=r,
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
        self.completed = Counter(
            "seamless_coordinator_completed_total",
            "Keys completed",
            ["node_id", "interval"],
            registry=r,
        )
        self.failed = Counter(
            "seamless_coordinator_failed_total",
            "Leases given back with a failure",
            ["node_id", "interval"],
            registry=r,
        )
        self.parked = Counter(
            "seamless_coordinator_parked_total",
            "Keys parked as failed after too many attempts",
            ["node_id", "interval"],
            registry=r,
        )
        self.rate_limited = Counter(
            "seamless_coordinator_rate_limited_total",
            "Requests refused with 429",
            registry=r,
        )
        self.completion_ratio = Gauge(
            "backfill_completion_ratio",
            "Completion ratio of the job a lease key belongs to (1.0 for a lone key)",
            ["node_id", "interval", "lease_key"],
            registry=r,
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
        self._ratio_series: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._max_ratio_series = max_ratio_series

    def set_completion_ratio(self, key: str, ratio: float) -> None:
        node_id, interval = key_labels(key)
        labels = (node_id, interval, key)
        self.completion_ratio.labels(*labels).set(ratio)
        self._ratio_series[labels] = None
        self._ratio_series.move_to_end(labels)
        while len(self._ratio_series) > self._max_ratio_series:
            oldest, _ = self._ratio_series.popitem(last=False)
            self.completion_ratio.remove(*oldest)
