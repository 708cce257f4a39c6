"""The data provider end to end on the in-memory store and coordinator (real
implementations of both interfaces, no mocks)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import polars as pl
import pytest
from prometheus_client import CollectorRegistry
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import ClaimOutcome
from seamless.coordination.memory import InMemoryCoordinator
from seamless.data.backfill import BackfillConfig, Backfiller, lease_key
from seamless.data.conformance import ConformancePipeline
from seamless.data.coverage import Range
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.sla import OnViolation, SLAPolicy
from seamless.data.storage import MemoryBarStore
from seamless.errors import (
    ConformancePipelineError,
    CoordinatorUnavailable,
    CoverageUnavailable,
    InvalidRequestError,
    SeamlessSLAExceeded,
)
from seamless.logging import configure_logging
from seamless.metrics import SeamlessMetrics
from seamless.testing import SyntheticFetcher, SyntheticLiveFeed, synthetic_bars

pytestmark = pytest.mark.unit

IV = 60
FAST = BackfillConfig(window_bars=10, retry_backoff_ms=1, lease_ms=5_000)


def make(
    fetcher: SyntheticFetcher | None = None,
    *,
    coordinator: InMemoryCoordinator | None = None,
    store: MemoryBarStore | None = None,
    **kwargs: object,
) -> tuple[SeamlessDataProvider, SyntheticFetcher, MemoryBarStore, SeamlessMetrics]:
    fetcher = fetcher or SyntheticFetcher(seed=1)
    store = store or MemoryBarStore()
    metrics = SeamlessMetrics(CollectorRegistry())
    provider = SeamlessDataProvider(
        store=store,
        fetcher=fetcher,
        coordinator=coordinator or InMemoryCoordinator(),
        metrics=metrics,
        backfill=kwargs.pop("backfill", FAST),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    return provider, fetcher, store, metrics


async def test_empty_store_backfills_then_serves_from_storage_then_cache() -> None:
    provider, fetcher, _store, metrics = make(strategy=Strategy.AUTO_BACKFILL)
    first = await provider.fetch(0, IV * 99, node_id="btc-1m", interval=IV)
    assert first.metadata.sources == ["backfill"]
    assert first.metadata.complete and first.metadata.coverage == [Range(0, IV * 99)]
    assert first.frame.equals(synthetic_bars(0, IV * 99, node_id="btc-1m", interval=IV, seed=1))
    calls = fetcher.calls()
    assert len(calls) == 10 and set(calls.values()) == {1}
    assert first.metadata.backfill is not None and len(first.metadata.backfill.completed) == 10

    provider.invalidate_cache()
    second = await provider.fetch(0, IV * 99, node_id="btc-1m", interval=IV)
    assert second.metadata.sources == ["storage"]
    assert fetcher.calls() == calls
    assert second.fingerprint == first.fingerprint

    third = await provider.fetch(0, IV * 99, node_id="btc-1m", interval=IV)
    assert third is second
    labels = {"node_id": "btc-1m", "interval": "60", "world_id": ""}
    assert metrics.value("seamless_cache_hit_total", labels) == 1
    assert metrics.value("seamless_cache_miss_total", labels) == 2
    assert metrics.value("coverage_ratio", labels) == 1.0
    total = {"node_id": "btc-1m", "phase": "total"}
    assert metrics.value("seamless_sla_deadline_seconds_count", total) == 2
    ratio = {
        "node_id": "btc-1m",
        "interval": "60",
        "lease_key": lease_key("btc-1m", IV, Range(0, 540)),
    }
    assert metrics.value("backfill_completion_ratio", ratio) > 0


async def test_fail_fast_strategy_reports_missing_ranges_without_fetching() -> None:
    provider, fetcher, store, _ = make(strategy=Strategy.FAIL_FAST)
    await store.write("n", IV, synthetic_bars(0, IV * 9, node_id="n", interval=IV))
    with pytest.raises(CoverageUnavailable) as err:
        await provider.fetch(0, IV * 19, node_id="n", interval=IV)
    assert err.value.missing == [(IV * 10, IV * 19)]
    assert not fetcher.calls()
    full = await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    assert full.metadata.sources == ["storage"] and full.frame.height == 10


async def test_partial_fill_answers_now_and_backfills_in_background() -> None:
    provider, _fetcher, store, metrics = make(
        SyntheticFetcher(seed=1, latency_ms=20), strategy=Strategy.PARTIAL_FILL
    )
    await store.write("n", IV, synthetic_bars(0, IV * 9, node_id="n", interval=IV, seed=1))
    result = await provider.fetch(0, IV * 39, node_id="n", interval=IV)
    assert result.frame.height == 10
    assert result.metadata.downgrade is not None
    assert result.metadata.downgrade.mode is OnViolation.PARTIAL_FILL
    assert result.metadata.missing == [Range(IV * 10, IV * 39)]
    reports = await provider.wait_background(timeout_s=10)
    assert [len(r.completed) for r in reports] == [3]
    later = await provider.fetch(0, IV * 39, node_id="n", interval=IV)
    assert later.metadata.complete and later.metadata.downgrade is None
    labels = {"node_id": "n", "interval": "60", "world_id": "", "reason": "partial_fill"}
    assert metrics.value("partial_fill_returns_total", labels) == 1


@pytest.mark.parametrize(
    ("start", "end", "node_id", "interval", "argument", "hint"),
    [
        (600, 0, "n", 60, "end", "end >= start"),
        (30, 600, "n", 60, "start", "multiple of interval=60"),
        (0, 610, "n", 60, "end", "e.g. 600 or 660"),
        (0, 600, "n", 0, "interval", "positive integer"),
        (0, 600, "n", -60, "interval", "positive integer"),
        (0, 600, "bad id!", 60, "node_id", "letters, digits"),
        (0, 600, "", 60, "node_id", "letters, digits"),
        (-60, 600, "n", 60, "start", "non-negative"),
        (0.0, 600, "n", 60, "start", "integer"),
    ],
)
async def test_bad_arguments_are_named_and_touch_nothing(
    start: int, end: int, node_id: str, interval: int, argument: str, hint: str
) -> None:
    provider, fetcher, store, _ = make()
    with pytest.raises(InvalidRequestError) as err:
        await provider.fetch(start, end, node_id=node_id, interval=interval)
    assert err.value.argument == argument
    assert hint in str(err.value)
    assert store.reads == 0 and store.writes == 0 and not fetcher.calls()


async def test_unknown_strategy_is_named() -> None:
    provider, *_ = make()
    with pytest.raises(InvalidRequestError, match=r"strategy.*one of fail_fast"):
        await provider.fetch(0, 600, node_id="n", interval=IV, strategy="eventually")


async def test_four_backfillers_on_overlapping_ranges_fetch_each_shard_once() -> None:
    coordinator, store = InMemoryCoordinator(), MemoryBarStore()
    fetcher = SyntheticFetcher(seed=2, latency_ms=5)
    metrics = SeamlessMetrics(CollectorRegistry())
    workers = [
        Backfiller(
            coordinator=coordinator, fetcher=fetcher, store=store, config=FAST, metrics=metrics
        )
        for _ in range(4)
    ]
    windows = [
        Range(0, IV * 399),
        Range(IV * 100, IV * 499),
        Range(IV * 50, IV * 350),
        Range(0, IV * 499),
    ]
    reports = await asyncio.gather(
        *(w.run("n", IV, [win]) for w, win in zip(workers, windows, strict=True))
    )
    calls = fetcher.calls()
    assert len(calls) == 50 and set(calls.values()) == {1}
    assert sum(len(r.completed) for r in reports) == 50
    for report, window in zip(reports, windows, strict=True):
        assert not report.unresolved and not report.failed
        assert report.settled == report.shards
        assert report.shards[0].start <= window.start and report.shards[-1].end >= window.end
    stored = await store.read("n", IV, 0, IV * 499)
    assert stored.equals(synthetic_bars(0, IV * 499, node_id="n", interval=IV, seed=2))


class _GatedStore(MemoryBarStore):
    """Writes wait for `gate`: a stand-in for a slow write and WAL apply."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def write(
        self, node_id: str, interval: int, frame: pl.DataFrame, *, token: int | None = None
    ) -> int:
        self.waiting += 1
        await self.gate.wait()
        return await super().write(node_id, interval, frame, token=token)


async def test_a_worker_fetches_its_next_shard_while_the_last_one_is_written() -> None:
    """A shard's write, WAL-apply wait and complete trail behind its worker, which claims
    and fetches the next shard meanwhile (one worker here: before, it waited for each
    write); every shard is still fetched once and completed under its lease."""
    coordinator, store = InMemoryCoordinator(), _GatedStore()
    fetcher = SyntheticFetcher(seed=3)
    backfiller = Backfiller(
        coordinator=coordinator,
        fetcher=fetcher,
        store=store,
        config=BackfillConfig(window_bars=10, max_concurrent_requests=1, lease_ms=5_000),
        metrics=SeamlessMetrics(CollectorRegistry()),
    )
    run = asyncio.create_task(backfiller.run("n", IV, [Range(0, IV * 39)]))
    await _until(lambda: _now(len(fetcher.calls()) == 4 and store.waiting == 4))
    for shard in range(4):  # all four fetched, all four writes pending, leases held
        assert await _held(
            coordinator, lease_key("n", IV, Range(IV * 10 * shard, IV * (10 * shard + 9)))
        )
    store.gate.set()
    report = await asyncio.wait_for(run, 10)
    assert len(report.completed) == 4 and report.settled == report.shards
    assert set(fetcher.calls().values()) == {1}
    for shard in report.shards:
        assert (await coordinator.inspect(lease_key("n", IV, shard))).state == "completed"


class _CountingCoordinator(InMemoryCoordinator):
    def __init__(self) -> None:
        super().__init__()
        self.claims: dict[str, int] = {}

    async def claim(self, key: str, lease_ms: int, **kwargs: Any) -> ClaimOutcome:
        self.claims[key] = self.claims.get(key, 0) + 1
        return await super().claim(key, lease_ms, **kwargs)


async def test_runs_of_one_process_wait_on_its_own_shard_instead_of_polling() -> None:
    """A second request overlapping a shard this process is already backfilling neither
    claims it while it runs nor polls the coordinator: it is woken when the shard is
    completed and counts it done elsewhere."""
    coordinator, store = _CountingCoordinator(), _GatedStore()
    fetcher = SyntheticFetcher(seed=4)
    backfiller = Backfiller(
        coordinator=coordinator,
        fetcher=fetcher,
        store=store,
        config=BackfillConfig(window_bars=10, lease_ms=5_000, poll_initial_ms=1, poll_max_ms=2),
        metrics=SeamlessMetrics(CollectorRegistry()),
    )
    first = asyncio.create_task(backfiller.run("n", IV, [Range(0, IV * 9)]))
    await _until(lambda: _now(store.waiting == 1))  # fetched, its write held back
    second = asyncio.create_task(backfiller.run("n", IV, [Range(0, IV * 19)]))
    await _until(lambda: _now(store.waiting == 2))  # the second run's own new shard
    await asyncio.sleep(0.05)  # polling every 1-2 ms would claim the shared shard ~30 times
    shared = lease_key("n", IV, Range(0, IV * 9))
    assert coordinator.claims[shared] == 1 and not second.done()
    store.gate.set()
    reports = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert reports[0].completed == [Range(0, IV * 9)]
    assert reports[1].done_elsewhere == [Range(0, IV * 9)]
    assert reports[1].completed == [Range(IV * 10, IV * 19)]
    assert coordinator.claims[shared] == 1 and set(fetcher.calls().values()) == {1}


async def _now(value: bool) -> bool:
    return value


async def test_transient_errors_are_retried_and_counted() -> None:
    provider, fetcher, _, metrics = make(
        SyntheticFetcher(seed=5, error_rate=0.4), strategy=Strategy.AUTO_BACKFILL
    )
    result = await provider.fetch(0, IV * 199, node_id="n", interval=IV)
    assert result.metadata.complete
    report = result.metadata.backfill
    assert report is not None
    retries = metrics.value("backfill_retry_total", {"node_id": "n", "interval": "60"})
    assert retries > 0
    assert report.fetch_attempts == 20 + retries == sum(fetcher.calls().values())


async def test_exhausted_attempts_fail_the_lease_and_are_counted() -> None:
    coordinator = InMemoryCoordinator()
    provider, fetcher, _, metrics = make(
        SyntheticFetcher(seed=5, error_rate=1.0),
        coordinator=coordinator,
        strategy=Strategy.AUTO_BACKFILL,
        backfill=BackfillConfig(window_bars=10, max_attempts=3, retry_backoff_ms=1),
    )
    result = await provider.fetch(0, IV * 19, node_id="n", interval=IV)
    assert result.frame.height == 0 and result.metadata.downgrade is not None
    assert "backfill: 2 shard(s) failed" in result.metadata.downgrade.reasons
    assert metrics.value("backfill_failure_total", {"node_id": "n", "interval": "60"}) == 2
    assert set(fetcher.calls().values()) == {3}
    info = await coordinator.inspect(lease_key("n", IV, Range(0, 540)))
    assert info.attempts == 1 and info.state == "free" and "FetchFailed" in (info.last_reason or "")


async def test_lost_lease_abandons_the_shard_to_its_new_holder() -> None:
    now_ms = [1_000_000]
    coordinator = InMemoryCoordinator(clock_ms=lambda: now_ms[0])
    store = MemoryBarStore()
    metrics = SeamlessMetrics(CollectorRegistry())
    backfiller = Backfiller(
        coordinator=coordinator,
        fetcher=SyntheticFetcher(latency_ms=2_000),
        store=store,
        config=BackfillConfig(window_bars=10, lease_ms=300),
        metrics=metrics,
    )
    run = asyncio.create_task(backfiller.run("n", IV, [Range(0, IV * 9)]))
    key = lease_key("n", IV, Range(0, IV * 9))
    await _until(lambda: _held(coordinator, key))
    now_ms[0] += 10_000  # the lease expires on the coordinator's clock ...
    taken = await coordinator.claim(key, 60_000)  # ... and another worker takes the key
    report = await asyncio.wait_for(run, 10)
    assert report.abandoned == [Range(0, IV * 9)] and not report.completed
    assert metrics.value("backfill_abandoned_total", {"node_id": "n", "interval": "60"}) == 1
    assert store.writes == 0
    info = await coordinator.inspect(key)
    assert info.state == "held" and info.token == taken.lease.token  # type: ignore[union-attr]


async def _held(coordinator: InMemoryCoordinator, key: str) -> bool:
    return (await coordinator.inspect(key)).state == "held"


async def _until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_backfill_budget_breach_raises_and_leaves_no_dangling_lease() -> None:
    coordinator = InMemoryCoordinator()
    provider, _, _, _ = make(
        SyntheticFetcher(latency_ms=400),
        coordinator=coordinator,
        sla=SLAPolicy(max_wait_backfill_ms=50),
        strategy=Strategy.AUTO_BACKFILL,
    )
    with pytest.raises(SeamlessSLAExceeded) as err:
        await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    assert err.value.phase == "backfill_wait" and err.value.budget_ms == 50
    await provider.wait_background(timeout_s=10)
    info = await coordinator.inspect(lease_key("n", IV, Range(0, IV * 9)))
    assert info.state == "completed"


async def test_backfill_budget_breach_under_partial_fill_downgrades() -> None:
    provider, _, _, _ = make(
        SyntheticFetcher(latency_ms=400),
        sla=SLAPolicy(max_wait_backfill_ms=50, on_violation=OnViolation.PARTIAL_FILL),
        strategy=Strategy.AUTO_BACKFILL,
    )
    result = await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    assert result.metadata.downgrade is not None
    assert result.metadata.downgrade.mode is OnViolation.PARTIAL_FILL
    assert any(r.startswith("backfill_wait") for r in result.metadata.downgrade.reasons)
    await provider.wait_background(timeout_s=10)


async def test_min_coverage_forces_hold() -> None:
    provider, _, _, _metrics = make(
        SyntheticFetcher(gaps=[Range(IV * 10, IV * 59)]),
        sla=SLAPolicy(min_coverage=0.98),
        strategy=Strategy.AUTO_BACKFILL,
    )
    result = await provider.fetch(0, IV * 99, node_id="n", interval=IV)
    assert result.metadata.coverage_ratio == 0.5
    assert result.metadata.downgrade is not None
    assert result.metadata.downgrade.mode is OnViolation.HOLD
    assert result.metadata.conformance.flags["gap"] == 1


async def test_sync_gap_limit() -> None:
    provider, fetcher, _, _ = make(sla=SLAPolicy(max_sync_gap_bars=5))
    with pytest.raises(SeamlessSLAExceeded) as err:
        await provider.fetch(0, IV * 99, node_id="n", interval=IV)
    assert err.value.phase == "sync_gap" and not fetcher.calls()
    tolerant, fetcher2, _, _ = make(
        sla=SLAPolicy(max_sync_gap_bars=5, on_violation=OnViolation.PARTIAL_FILL)
    )
    result = await tolerant.fetch(0, IV * 99, node_id="n", interval=IV)
    assert result.metadata.downgrade is not None and result.frame.height == 0
    await tolerant.wait_background(timeout_s=10)
    assert len(fetcher2.calls()) == 10


async def test_live_feed_serves_the_tail_beyond_the_last_closed_bar() -> None:
    t0 = IV * 1000
    began = time.monotonic()
    live_clock = lambda: t0 + (time.monotonic() - began) * 600  # noqa: E731 - 10 bars/s
    provider, fetcher, _, _ = make(
        SyntheticFetcher(seed=1, horizon=lambda: float(t0)),
        clock=lambda: float(t0),
        live_feed=SyntheticLiveFeed(seed=1, clock=live_clock, poll_s=0.005),
        strategy=Strategy.SEAMLESS,
    )
    result = await provider.fetch(t0 - IV * 20, t0 + IV * 4, node_id="n", interval=IV)
    assert result.metadata.sources == ["backfill", "live"]
    assert result.metadata.complete
    expected = synthetic_bars(t0 - IV * 20, t0 + IV * 4, node_id="n", interval=IV, seed=1)
    assert result.frame.equals(expected)
    assert all(end < t0 for (_, _, _, end) in fetcher.calls())
    assert "live_wait" in result.metadata.phase_ms


async def test_live_budget_breach() -> None:
    t0 = IV * 1000
    slow_live = SyntheticLiveFeed(clock=lambda: float(t0), poll_s=0.005)  # nothing ever closes
    provider, _, _, _ = make(
        SyntheticFetcher(horizon=lambda: float(t0)),
        clock=lambda: float(t0),
        live_feed=slow_live,
        sla=SLAPolicy(max_wait_live_ms=50),
    )
    with pytest.raises(SeamlessSLAExceeded) as err:
        await provider.fetch(t0 - IV * 5, t0 + IV * 4, node_id="n", interval=IV)
    assert err.value.phase == "live_wait"


async def test_strict_conformance_fails_a_faulty_shard_without_retrying() -> None:
    coordinator = InMemoryCoordinator()
    provider, fetcher, store, _ = make(
        SyntheticFetcher(schema_faults=frozenset({"non_finite"})),
        coordinator=coordinator,
        conformance=ConformancePipeline.preset("strict-blocking"),
        strategy=Strategy.AUTO_BACKFILL,
    )
    # The block reaches the caller (the seeds: ConformancePipelineError unless partial_ok).
    with pytest.raises(ConformancePipelineError) as blocked:
        await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    assert blocked.value.report.flags["non_finite"] > 0  # type: ignore[attr-defined]
    assert store.writes == 0
    assert sum(fetcher.calls().values()) == 1  # a data fault is not retried
    info = await coordinator.inspect(lease_key("n", IV, Range(0, IV * 9)))
    assert "ConformancePipelineError" in (info.last_reason or "")


async def test_permissive_conformance_stores_the_normalised_shard() -> None:
    provider, _, _, _metrics = make(
        SyntheticFetcher(schema_faults=frozenset({"duplicate_ts", "string_prices"})),
        conformance=ConformancePipeline.preset("permissive-dev"),
        strategy=Strategy.AUTO_BACKFILL,
    )
    result = await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    assert result.metadata.complete and result.frame["close"].dtype == pl.Float64
    report = result.metadata.backfill
    assert report is not None and report.conformance.flags["duplicate_ts"] == 3


async def test_strict_response_blocks_on_bad_stored_data() -> None:
    store = MemoryBarStore()
    provider, *_ = make(store=store, conformance=ConformancePipeline.preset("strict-blocking"))
    bad = synthetic_bars(0, IV * 9, node_id="n", interval=IV).with_columns(
        pl.when(pl.col("ts") == 0).then(float("inf")).otherwise(pl.col("high")).alias("high")
    )
    await store.write("n", IV, bad)
    with pytest.raises(ConformancePipelineError, match="NaN/inf"):
        await provider.fetch(0, IV * 9, node_id="n", interval=IV, strategy=Strategy.FAIL_FAST)


async def test_unreachable_coordinator_is_an_error_never_a_silent_skip() -> None:
    client = CoordinatorClient("http://127.0.0.1:9", timeout=0.5)
    store = MemoryBarStore()
    fetcher = SyntheticFetcher()
    provider = SeamlessDataProvider(
        store=store,
        fetcher=fetcher,
        coordinator=client,
        metrics=SeamlessMetrics(CollectorRegistry()),
        backfill=FAST,
    )
    try:
        with pytest.raises(CoordinatorUnavailable):
            await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    finally:
        await client.aclose()
    assert not fetcher.calls() and store.writes == 0


async def test_logs_are_json_with_the_request_and_lease_fields() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        provider, *_ = make()
        await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    finally:
        configure_logging("INFO")
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    done = [e for e in events if e["event"] == "seamless.backfill.completed"]
    assert len(done) == 1
    for name in ("node_id", "interval", "start", "end", "lease_key", "token"):
        assert name in done[0]
    assert done[0]["lease_key"] == lease_key("n", IV, Range(0, IV * 9))
    fetch = [e for e in events if e["event"] == "seamless.fetch"]
    assert fetch and {"node_id", "interval", "start", "end"} <= fetch[0].keys()


class _SlowToCancelStore(MemoryBarStore):
    """A memory store whose reads hang and, once cancelled, take `unwind_s` to give up, as a
    PG-wire read does while psycopg's cancel request waits on a busy server."""

    def __init__(self, unwind_s: float) -> None:
        super().__init__()
        self.unwind_s = unwind_s
        self.unwound = asyncio.Event()

    async def read(self, node_id: str, interval: int, start: int, end: int) -> pl.DataFrame:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(self.unwind_s)
            self.unwound.set()
            raise
        raise AssertionError("the read was never cancelled")


async def test_storage_budget_is_kept_while_a_cancelled_read_unwinds_slow_cancel_store() -> None:
    # The load gate saw storage_wait 5.1 s against a 3 s budget: the phase waited for the
    # cancelled PG read to unwind. The caller's deadline is the budget, not budget + unwind.
    budget_ms, unwind_s = 200, 1.5
    store = _SlowToCancelStore(unwind_s)
    provider, _, _, _ = make(
        store=store,
        sla=SLAPolicy(max_wait_storage_ms=budget_ms, on_violation=OnViolation.PARTIAL_FILL),
        strategy=Strategy.FAIL_FAST,
    )
    began = time.monotonic()
    with pytest.raises(CoverageUnavailable):
        await provider.fetch(0, IV * 9, node_id="n", interval=IV)
    assert time.monotonic() - began < unwind_s, "the fetch waited for the read to unwind"
    assert not store.unwound.is_set()
    await provider.aclose()  # and closing waits until the read has unwound
    assert store.unwound.is_set()
