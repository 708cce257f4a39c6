"""What the scenarios run: SDK workers (data providers over the chaos topology) with short
TTLs and backoffs, their fetches recorded, and the standard invariants checked at the end."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl
from seamless.coordination.protocol import LeaseInfo
from seamless.data.backfill import BackfillConfig
from seamless.data.conformance import ConformancePipeline
from seamless.data.coverage import Range
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.sla import SLAPolicy
from seamless.data.storage.base import BarStore
from seamless.metrics import SeamlessMetrics
from seamless.testing import MemoryCallLog, SyntheticFetcher

from chaos.invariants import (
    AuditedCoordinator,
    LeaseAudit,
    RequestOutcome,
    counters_match,
    jobs_complete,
    no_stale_token_accepted,
    ranges_accounted,
    rows_unique,
)
from chaos.report import InvariantResult
from chaos.topology import ChaosTopology
from chaos.toxiproxy import Proxy


class Topology(Protocol):
    """What the workers and the standard invariants need of a topology: the suite's own
    (`ChaosTopology`) or the deployed containers' (tests/engine/docker/test_chaos_on_stack.py)."""

    audit: LeaseAudit

    def client(
        self, worker: str, *, timeout: float = 2.0, audited: bool = True
    ) -> AuditedCoordinator: ...

    def stored_coverage(self, table_prefix: str) -> dict[tuple[str, int], list[Range]]: ...

    def stored_token_rows(self, table_prefix: str) -> list[tuple[str, int, int, int | None]]: ...

    def coordinator_counter(self, name: str, **labels: str) -> float: ...

    async def inspect(self, keys: list[str]) -> dict[str, LeaseInfo]: ...


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


def scaled_preset(name: str, **budgets: float) -> SLAPolicy:
    """The named SLA preset with some budgets shortened for a test (its mode unchanged)."""
    return SLAPolicy.preset(name).model_copy(update=budgets)


def shard_span(shards: int = 1, first_shard: int = 0) -> tuple[int, int]:
    """[start, end] covering `shards` whole shards from shard number `first_shard`."""
    width = WINDOW_BARS * INTERVAL
    start = first_shard * width
    return start, start + shards * width - INTERVAL


@dataclass
class GatedFetcher:
    """The synthetic fetcher, held at a gate until the scenario has its fault in place (so
    the order of events is decided by conditions, not by timing)."""

    inner: SyntheticFetcher
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def fetch(self, start: int, end: int, *, node_id: str, interval: int) -> pl.DataFrame:
        await self.gate.wait()
        return await self.inner.fetch(start, end, node_id=node_id, interval=interval)

    def calls(self) -> Counter[tuple[str, int, int, int]]:
        return self.inner.calls()


@dataclass
class Worker:
    name: str
    provider: SeamlessDataProvider
    metrics: SeamlessMetrics
    fetcher: SyntheticFetcher | GatedFetcher
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
    topology: Topology,
    name: str,
    *,
    store: BarStore,
    fetcher: SyntheticFetcher | GatedFetcher | None = None,
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
    topology: Topology,
    workers: list[Worker],
    table_prefix: str | None,
    *,
    extra_requests: list[RequestOutcome] | None = None,
) -> list[InvariantResult]:
    """The five invariants of the issue, over everything the workers did."""
    requests = [r for w in workers for r in w.requests] + list(extra_requests or [])
    stored = topology.stored_coverage(table_prefix) if table_prefix else {}
    rows = topology.stored_token_rows(table_prefix) if table_prefix else []
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
                        + sum(
                            audit.count(op, "unavailable") for op in ("renew", "complete", "fail")
                        ),
                    ),
                ),
                (
                    "coordinator completed_total",
                    topology.coordinator_counter("seamless_coordinator_completed_total"),
                    (
                        audit.count("complete", "accepted"),
                        audit.count("complete", "accepted")
                        + audit.count("complete", "unavailable"),
                    ),
                ),
            ]
        ),
    ]


async def lease_loss_then_reclaim(
    topology: ChaosTopology,
    scenario: Any,
    *,
    tag: str,
    fault: Callable[[Proxy], AbstractContextManager[object]],
) -> None:
    """Scenarios 3 and 4: worker A claims a shard and, while its fetch is still running,
    loses its link to the coordinator (`fault` on A's proxy). A must abandon the shard
    (never write it); after the lease runs out, worker B re-claims it with a higher token
    and completes it."""
    from chaos.conftest import wait_for  # the conftest's helper; no import cycle at load

    prefix = topology.table_prefix(tag)
    node = f"{tag}-node"
    lease_ms = 900
    a = make_worker(
        topology,
        f"{tag}-a",
        store=topology.store(prefix),
        fetcher=SyntheticFetcher(seed=7, latency_ms=4_000),  # still fetching when cut off
        backfill=chaos_backfill(lease_ms=lease_ms),
    )
    b = make_worker(
        topology,
        f"{tag}-b",
        store=topology.store(prefix),
        backfill=chaos_backfill(lease_ms=lease_ms),
    )
    start, end = shard_span(1)
    key = f"{node}:{INTERVAL}:{start}:{end}::"
    a_task = asyncio.create_task(a.fetch(start, end, node))
    a_grant = await wait_for(
        lambda: [e for e in topology.audit.of("claim", "granted") if e.worker == a.name],
        timeout=10,
        what="A's claim",
    )
    a_token = a_grant[0].token
    with fault(topology.worker_proxy(a.name)):
        a_request = await asyncio.wait_for(a_task, timeout=15)
        b_request = await asyncio.wait_for(b.fetch(start, end, node), timeout=15)
    scenario.observe(
        f"A: token {a_token}; abandoned {_shards(a_request, 'abandoned')}; "
        f"A's result missing {a_request.result and a_request.result.metadata.missing}, "
        f"downgrade {a_request.result and a_request.result.metadata.downgrade}; "
        f"error {a_request.error!r}"
    )
    b_grants = [e.token for e in topology.audit.of("claim", "granted") if e.worker == b.name]
    scenario.observe(
        f"B: tokens granted {b_grants}; completed {_shards(b_request, 'completed')}; "
        f"served {b_request.result and b_request.result.frame.height} bars"
    )
    renew_failures = [
        e.answer
        for e in topology.audit.of("renew")
        if e.worker == a.name and e.answer != "accepted"
    ]
    scenario.observe(f"A's renewals that failed: {len(renew_failures)} ({set(renew_failures)})")
    scenario.expect(
        "A's renewals failed and A abandoned the shard (counted)",
        bool(renew_failures)
        and _shards(a_request, "abandoned") == [(start, end)]
        and a.counter("backfill_abandoned_total") == 1,
        f"renew failures {len(renew_failures)}, abandoned metric "
        f"{a.counter('backfill_abandoned_total')}",
    )
    scenario.expect(
        "A never wrote the shard",
        not _shards(a_request, "completed"),
        f"A completed {_shards(a_request, 'completed')}",
    )
    scenario.expect(
        "B re-claimed with a higher token and completed",
        len(b_grants) == 1
        and a_token is not None
        and b_grants[0] is not None
        and b_grants[0] > a_token
        and _shards(b_request, "completed") == [(start, end)],
        f"A {a_token}, B {b_grants}",
    )
    final = await topology.inspect([key])
    scenario.expect(
        "the key ends completed under B's token",
        final[key].state == "completed" and final[key].token == (b_grants or [None])[0],
        f"{final[key].state} token {final[key].token} holder {final[key].holder}",
    )
    scenario.expect(
        "the fetcher ran the shard once per holder (A cut off, B complete)",
        a.fetcher.calls()[(node, INTERVAL, start, end)] == 1
        and b.fetcher.calls()[(node, INTERVAL, start, end)] == 1,
        f"A {dict(a.fetcher.calls())}, B {dict(b.fetcher.calls())}",
    )
    for check in await standard_invariants(topology, [a, b], prefix):
        scenario.check(check)


def _shards(request: RequestOutcome, kind: str) -> list[tuple[int, int]]:
    if request.result is None or request.result.metadata.backfill is None:
        return []
    shards: list[Range] = getattr(request.result.metadata.backfill, kind)
    return [(s.start, s.end) for s in shards]
