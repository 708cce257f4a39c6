"""What the scenarios run: SDK workers (data providers over the chaos topology) with short
TTLs and backoffs, their fetches recorded, and the standard invariants checked at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seamless.backfill import BackfillConfig
from seamless.conformance import ConformancePipeline
from seamless.fetcher import MemoryCallLog, SyntheticFetcher
from seamless.metrics import SeamlessMetrics
from seamless.provider import SeamlessDataProvider, Strategy
from seamless.sla import SLAPolicy
from seamless.storage.base import BarStore

from chaos.invariants import (
    RequestOutcome,
    counters_match,
    jobs_complete,
    no_stale_token_accepted,
    ranges_accounted,
    rows_unique,
)
from chaos.report import InvariantResult
from chaos.topology import ChaosTopology

INTERVAL = 60  # 1-minute bars
WINDOW_BARS = 30  # 30-bar shards: a shard is 30 minutes of bars


def chaos_backfill(**overrides: Any) -> BackfillConfig:
    """QMTL's backfill with test-sized numbers: short leases, short backoffs."""
    settings: dict[str, Any] = {
        "window_bars": WINDOW_BARS,
        "max_concurrent_requests": 4,
        "max_attempts": 4,
        "retry_backoff_ms": 50,
        "retry_backoff_max_ms": 400,
        "jitter": 0.25,
        "lease_ms": 1_500,
        "poll_initial_ms": 20,
        "poll_max_ms": 200,
    }
    settings.update(overrides)
    return BackfillConfig(**settings)


def scaled_preset(name: str, **budgets: int) -> SLAPolicy:
    """The named SLA preset with some budgets shortened for a test (its mode unchanged)."""
    return SLAPolicy.preset(name).model_copy(update=budgets)


def shard_span(shards: int = 1, first_shard: int = 0) -> tuple[int, int]:
    """[start, end] covering `shards` whole shards from shard number `first_shard`."""
    width = WINDOW_BARS * INTERVAL
    start = first_shard * width
    return start, start + shards * width - INTERVAL


@dataclass
class Worker:
    name: str
    provider: SeamlessDataProvider
    metrics: SeamlessMetrics
    fetcher: SyntheticFetcher
    requests: list[RequestOutcome] = field(default_factory=list)

    async def fetch(self, start: int, end: int, node_id: str, **kwargs: Any) -> RequestOutcome:
        outcome = RequestOutcome(node_id, INTERVAL, start, end)
        try:
            outcome.result = await self.provider.fetch(
                start, end, node_id=node_id, interval=INTERVAL, **kwargs
            )
        except Exception as exc:  # recorded: the invariants need explicit errors too
            outcome.error = exc
        self.requests.append(outcome)
        return outcome

    def counter(self, name: str, **labels: str) -> float:
        """Sum of SDK counter `name` over series whose labels include `labels`."""
        total = 0.0
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total


def make_worker(
    topology: ChaosTopology,
    name: str,
    *,
    store: BarStore,
    fetcher: SyntheticFetcher | None = None,
    sla: SLAPolicy | None = None,
    backfill: BackfillConfig | None = None,
    conformance: ConformancePipeline | None = None,
    strategy: Strategy = Strategy.AUTO_BACKFILL,
    client_timeout: float = 2.0,
    call_log: MemoryCallLog | None = None,
    **provider_kwargs: Any,
) -> Worker:
    metrics = SeamlessMetrics()  # a private registry: exact counts for this worker
    fetcher = fetcher or SyntheticFetcher(seed=7, call_log=call_log or MemoryCallLog())
    provider = SeamlessDataProvider(
        store=store,
        fetcher=fetcher,
        coordinator=topology.client(name, timeout=client_timeout),
        strategy=strategy,
        sla=sla or SLAPolicy(),
        conformance=conformance,
        backfill=backfill or chaos_backfill(),
        metrics=metrics,
        cache_ttl_s=0.0,  # every fetch goes to storage: chaos is about the path below
        **provider_kwargs,
    )
    return Worker(name, provider, metrics, fetcher)


async def standard_invariants(
    topology: ChaosTopology,
    workers: list[Worker],
    table_prefix: str | None,
    *,
    extra_requests: list[RequestOutcome] | None = None,
) -> list[InvariantResult]:
    """The five invariants of the issue, over everything the workers did."""
    requests = [r for w in workers for r in w.requests] + list(extra_requests or [])
    stored = topology.stored_coverage(table_prefix) if table_prefix else {}
    rows = topology.stored_rows(table_prefix) if table_prefix else []
    audit = topology.audit
    final = await topology.inspect(sorted(audit.keys()))
    sdk_completed = sum(w.counter("backfill_shards_total", outcome="completed") for w in workers)
    return [
        ranges_accounted(requests, stored),
        rows_unique(rows),
        no_stale_token_accepted(audit, final),
        jobs_complete(audit.finished_jobs()),
        counters_match(
            [
                (
                    "SDK backfill_shards_total{completed}",
                    sdk_completed,
                    sum(
                        1
                        for e in audit.of("complete", "accepted")
                        if e.worker in {w.name for w in workers}
                    ),
                ),
                (
                    "coordinator claims_total{granted}",
                    topology.coordinator_counter(
                        "seamless_coordinator_claims_total", outcome="granted"
                    ),
                    (
                        audit.count("claim", "granted"),
                        audit.count("claim", "granted") + audit.count("claim", "unavailable"),
                    ),
                ),
                (
                    "coordinator stale_rejections_total",
                    topology.coordinator_counter("seamless_coordinator_stale_rejections_total"),
                    (
                        audit.count(answer="stale"),
                        audit.count(answer="stale")
                        + sum(audit.count(op, "unavailable") for op in ("renew", "complete", "fail")),
                    ),
                ),
                (
                    "coordinator completed_total",
                    topology.coordinator_counter("seamless_coordinator_completed_total"),
                    (
                        audit.count("complete", "accepted"),
                        audit.count("complete", "accepted") + audit.count("complete", "unavailable"),
                    ),
                ),
            ]
        ),
    ]

