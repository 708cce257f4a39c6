"""Backfill of missing ranges, shard by shard, through the coordinator.

Missing ranges are aligned to the shard grid (``window_bars * interval``, anchored at 0), so
two workers whose requests overlap name the same shard keys and the coordinator lets only
one of them fetch each shard. For every shard a worker:

1. claims ``{node_id}:{interval}:{start}:{end}:{world_id}:{as_of}`` with the job id and
   shard count (so the job's completion ratio is real);
2. holds the lease with `seamless.coordination.leases.hold_lease`, which renews it every
   TTL/3 while the fetcher runs;
3. fetches (retried with exponential backoff and ±jitter by tenacity), normalises through
   the conformance pipeline and writes the rows (the store returns once they are readable;
   a failed write is retried the same way, without refetching);
4. completes the lease. A lost lease abandons the shard — counted, logged, not written, left
   to the new holder. The write carries the lease's fencing token: the store refuses it
   (`WriteFenced`, also an abandon) once a newer holder's bars are stored, and serves the
   newer holder's bars even if a paused stale write lands after them.

A worker moves on once a shard's fetch is over: the write, the WAL-apply wait and the
complete of that shard finish in a task of their own (still under its held lease) while the
worker claims and fetches the next shard, and `Backfiller.run` returns when all of them are
done. At most ``max_concurrent_requests`` fetches run at once per run, as before.

A shard held by another worker is not waited for in line: it is deferred and re-checked
once the worker has run out of unclaimed shards, so N workers share the work instead of
queueing behind each other. A shard that this process is already backfilling for another
request is not claimed or polled at all: the run waits for it locally and is woken the
moment it is completed (overlapping requests of one process, e.g. the load gate's cold
windows, used to poll the coordinator for their own process's lease). Concurrency per
worker is bounded by ``max_concurrent_requests``. Shards beyond the fetcher's horizon (bars
not yet closed) are left to the live feed; a shard straddling the horizon is clipped, and
its key names the clipped end, so it never completes the full shard's key.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
)

from seamless.coordination.interface import Coordinator, Granted, NotGranted
from seamless.coordination.leases import HeldLease, hold_lease
from seamless.data.conformance import ConformancePipeline, ConformanceReport
from seamless.data.coverage import Range, align_to_shards
from seamless.data.fetcher import DataFetcher
from seamless.data.storage.base import BarStore
from seamless.errors import (
    ConformancePipelineError,
    CoordinatorUnavailable,
    LeaseLost,
    StorageError,
    WriteFenced,
)
from seamless.logging import get_logger
from seamless.metrics import SeamlessMetrics


@dataclass(frozen=True)
class BackfillConfig:
    """QMTL's defaults: 900-bar shards, 8 concurrent requests, 6 attempts, 500 ms backoff
    with 25 % jitter; lease TTL 120 s (``distributed_lease_ttl_ms``)."""

    window_bars: int = 900
    max_concurrent_requests: int = 8
    max_attempts: int = 6
    retry_backoff_ms: int = 500
    retry_backoff_max_ms: int = 30_000
    jitter: float = 0.25
    lease_ms: int = 120_000
    # re-check of shards held by other workers
    poll_initial_ms: int = 25
    poll_max_ms: int = 1_000

    def __post_init__(self) -> None:
        for name in ("window_bars", "max_concurrent_requests", "max_attempts", "lease_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"BackfillConfig.{name}={getattr(self, name)}: expected >= 1")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"BackfillConfig.jitter={self.jitter}: expected 0 <= jitter < 1")


def lease_key(
    node_id: str, interval: int, shard: Range, world_id: str = "", as_of: str = ""
) -> str:
    return f"{node_id}:{interval}:{shard.start}:{shard.end}:{world_id}:{as_of}"


@dataclass
class BackfillReport:
    """What one backfill run did, shard by shard."""

    job_id: str
    shards: list[Range] = field(default_factory=list)
    completed: list[Range] = field(default_factory=list)  # fetched and written by us
    done_elsewhere: list[Range] = field(default_factory=list)  # completed by another holder
    failed: list[Range] = field(default_factory=list)  # attempts exhausted or parked
    abandoned: list[Range] = field(default_factory=list)  # lease lost mid-flight
    unresolved: list[Range] = field(default_factory=list)  # still held elsewhere at deadline
    coordinator_errors: list[str] = field(default_factory=list)
    rows_written: int = 0
    fetch_attempts: int = 0
    conformance: ConformanceReport = field(default_factory=ConformanceReport)
    completion_ratio: float | None = None
    # shards whose fetched frame the conformance pipeline blocked (nothing of it stored)
    blocked: list[ConformancePipelineError] = field(default_factory=list)
    completed_at: list[float] = field(default_factory=list)  # wall clock, per completed shard

    @property
    def settled(self) -> list[Range]:
        """Shards whose data is in the store now (by us or by someone else)."""
        return sorted([*self.completed, *self.done_elsewhere])


class Backfiller:
    def __init__(
        self,
        *,
        coordinator: Coordinator,
        fetcher: DataFetcher,
        store: BarStore,
        conformance: ConformancePipeline | None = None,
        config: BackfillConfig | None = None,
        metrics: SeamlessMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.fetcher = fetcher
        self.store = store
        self.conformance = conformance if conformance is not None else ConformancePipeline()
        self.config = config if config is not None else BackfillConfig()
        self.metrics = metrics if metrics is not None else SeamlessMetrics.default()
        self._rng = rng if rng is not None else random.Random()
        self._log = get_logger("seamless.backfill")
        # lease key -> resolved True once this process completed the shard, False if it did
        # not: runs of this backfiller wait on each other's shards here instead of polling
        # the coordinator for a lease their own process holds
        self._inflight: dict[str, asyncio.Future[bool]] = {}

    def shards_for(
        self, missing: list[Range], interval: int, horizon_end: int | None = None
    ) -> list[Range]:
        """Aligned shards covering `missing`, clipped to the last closed bar."""
        shards = align_to_shards(missing, interval, self.config.window_bars)
        if horizon_end is None:
            return shards
        return [Range(s.start, min(s.end, horizon_end)) for s in shards if s.start <= horizon_end]

    async def run(
        self,
        node_id: str,
        interval: int,
        missing: list[Range],
        *,
        horizon_end: int | None = None,
        deadline: float | None = None,
        world_id: str = "",
        as_of: str = "",
    ) -> BackfillReport:
        """Backfill the shards covering `missing`. ``deadline`` (``time.monotonic()``) stops
        claiming new shards and waiting on others' shards; in-flight shards still finish so
        no lease is left dangling."""
        shards = self.shards_for(missing, interval, horizon_end)
        report = BackfillReport(job_id=uuid.uuid4().hex, shards=shards)
        if not shards:
            return report
        run = _Run(self, report, node_id, interval, deadline, world_id, as_of)
        self.metrics.backfill_jobs_in_progress.inc()
        try:
            workers = min(self.config.max_concurrent_requests, len(shards))
            await asyncio.gather(*(run.worker() for _ in range(workers)))
            while run.trailing:  # the last shards' writes and completes
                await asyncio.gather(*run.trailing)
        finally:
            for task in run.trailing:
                task.cancel()
            if run.trailing:
                await asyncio.gather(*run.trailing, return_exceptions=True)
            self.metrics.backfill_jobs_in_progress.dec()
        report.unresolved = sorted(run.deferred)
        return report


class _Run:
    """One backfill job: a shared queue of shards, drained by `worker` coroutines."""

    def __init__(
        self,
        backfiller: Backfiller,
        report: BackfillReport,
        node_id: str,
        interval: int,
        deadline: float | None,
        world_id: str,
        as_of: str,
    ) -> None:
        self.b = backfiller
        self.cfg = backfiller.config
        self.report = report
        self.node_id = node_id
        self.interval = interval
        self.deadline = deadline
        self.world_id = world_id
        self.as_of = as_of
        # Each run starts at a random shard and wraps around: workers racing over the same
        # range then begin far apart instead of bouncing off each other's leases in order.
        self.queue: deque[Range] = deque(report.shards)
        self.queue.rotate(-backfiller._rng.randrange(len(report.shards)))
        self.deferred: deque[Range] = deque()
        self.series = {"node_id": node_id, "interval": str(interval)}
        # shards fetched, still being written and completed behind their worker
        self.trailing: set[asyncio.Task[bool]] = set()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def key(self, shard: Range) -> str:
        return lease_key(self.node_id, self.interval, shard, self.world_id, self.as_of)

    async def worker(self) -> None:
        while self.queue and not self.expired():
            shard = self.queue.popleft()
            if not await self.attempt(shard):
                self.deferred.append(shard)
        poll = self.cfg.poll_initial_ms / 1000
        while self.deferred and not self.expired():
            shard = self.deferred.popleft()
            if await self.attempt(shard):
                poll = self.cfg.poll_initial_ms / 1000
                continue
            self.deferred.append(shard)
            local = self.b._inflight.get(self.key(shard))
            if local is not None:  # held by this process: woken as soon as it is settled
                await asyncio.wait(
                    {local}, timeout=self._bounded_sleep(self.cfg.poll_max_ms / 1000)
                )
                if local.done() and local.result() and shard in self.deferred:
                    self.deferred.remove(shard)  # completed here: no need to ask
                    self.report.done_elsewhere.append(shard)
                    self._count("skipped_completed")
                continue
            await asyncio.sleep(self._bounded_sleep(poll))
            poll = min(poll * 2, self.cfg.poll_max_ms / 1000)

    def _bounded_sleep(self, seconds: float) -> float:
        if self.deadline is None:
            return seconds
        return max(0.0, min(seconds, self.deadline - time.monotonic()))

    async def attempt(self, shard: Range) -> bool:
        """Claim and process `shard`; False when another worker holds it (re-check later).
        A shard this process is backfilling for another run is not claimed (False): the
        deferred loop waits for it locally."""
        key = self.key(shard)
        if key in self.b._inflight:
            return False
        log = self.b._log.bind(
            node_id=self.node_id,
            interval=self.interval,
            start=shard.start,
            end=shard.end,
            lease_key=key,
        )
        try:
            outcome = await self.b.coordinator.claim(
                key,
                self.cfg.lease_ms,
                job_id=self.report.job_id,
                shards_total=len(self.report.shards),
            )
        except CoordinatorUnavailable as exc:
            self.report.coordinator_errors.append(f"{key}: {exc}")
            log.error("seamless.backfill.coordinator_unavailable", error=str(exc))
            return True  # settled as unavailable; the caller reports it, never a silent skip
        if isinstance(outcome, NotGranted):
            if outcome.reason == "held":
                return False
            if outcome.reason == "completed":
                self.report.done_elsewhere.append(shard)
                self._count("skipped_completed")
                if outcome.completion_ratio is not None:
                    self._record_ratio(shard, outcome.completion_ratio)
            else:
                self.report.failed.append(shard)
                self._count("parked")
                log.warning("seamless.backfill.parked", reason=outcome.reason)
            return True
        await self._process_until_fetched(shard, outcome, log)
        return True

    async def _process_until_fetched(self, shard: Range, granted: Granted, log: Any) -> None:
        """Process `shard` in a task of its own and return once its fetch is over: the
        worker claims and fetches its next shard while this one's write, WAL-apply wait and
        complete finish behind it (under the same held lease), so a worker's fetches are
        never spaced by storage round trips. `Backfiller.run` waits for every such task."""
        loop = asyncio.get_running_loop()
        fetched: asyncio.Future[None] = loop.create_future()
        key = self.key(shard)
        settled: asyncio.Future[bool] = loop.create_future()
        self.b._inflight[key] = settled

        def done(task: asyncio.Task[bool]) -> None:
            self.trailing.discard(task)
            if self.b._inflight.get(key) is settled:
                del self.b._inflight[key]
            settled.set_result(not task.cancelled() and task.exception() is None and task.result())

        task = asyncio.create_task(self.process(shard, granted, log, fetched))
        self.trailing.add(task)
        task.add_done_callback(done)
        over: set[asyncio.Future[Any]] = {task, fetched}
        await asyncio.wait(over, return_when=asyncio.FIRST_COMPLETED)

    async def process(
        self,
        shard: Range,
        granted: Granted,
        log: Any,
        fetched: asyncio.Future[None] | None = None,
    ) -> bool:
        """Fetch, write and complete `shard` under its lease; `fetched` is resolved once the
        fetch is over (successful or not). True when the shard was completed."""
        log = log.bind(token=granted.lease.token)
        log.info("seamless.backfill.attempt")
        try:
            async with hold_lease(
                self.b.coordinator,
                granted,
                self.cfg.lease_ms,
                job_id=self.report.job_id,
                shards_total=len(self.report.shards),
            ) as held:
                try:
                    frame = await self.fetch_with_retries(shard, log)
                finally:
                    if fetched is not None and not fetched.done():
                        fetched.set_result(None)
                held.raise_if_lost()  # never write for a lease someone else now holds
                rows = await self.write_with_retries(frame, held, log)
                held.raise_if_lost()
        except (LeaseLost, WriteFenced) as exc:  # the store knows a newer holder: final
            self.report.abandoned.append(shard)
            self._count("abandoned")
            self.b.metrics.backfill_abandoned_total.labels(**self.series).inc()
            log.warning("seamless.backfill.lease_lost", reason=str(exc))
            return False
        except CoordinatorUnavailable as exc:
            self.report.coordinator_errors.append(f"{self.key(shard)}: {exc}")
            log.error("seamless.backfill.coordinator_unavailable", error=str(exc))
            return False
        except Exception as exc:  # the shard failed: the lease was failed with this reason
            if isinstance(exc, ConformancePipelineError):
                self.report.blocked.append(exc)  # the caller must see the block itself
            self.report.failed.append(shard)
            self._count("failed")
            self.b.metrics.backfill_failure_total.labels(**self.series).inc()
            log.error("seamless.backfill.failed", error=f"{type(exc).__name__}: {exc}")
            return False
        self.report.completed.append(shard)
        self.report.completed_at.append(time.time())
        self.report.rows_written += rows
        self._count("completed")
        if held.result is not None:
            self._record_ratio(shard, held.result.completion_ratio)
        log.info("seamless.backfill.completed", rows=rows, renewals=held.renewals)
        return True

    def _record_ratio(self, shard: Range, ratio: float) -> None:
        # Concurrent completes may answer out of order; the job's ratio only grows.
        self.report.completion_ratio = max(self.report.completion_ratio or 0.0, ratio)
        self.b.metrics.backfill_completion_ratio.labels(
            **self.series, lease_key=self.key(shard)
        ).set(ratio)

    async def fetch_with_retries(self, shard: Range, log: Any) -> pl.DataFrame:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.cfg.max_attempts),
            wait=self._backoff,
            retry=retry_if_exception(_retryable),
            before_sleep=lambda state: self._on_retry(state, log),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self.report.fetch_attempts += 1
                raw = await self.b.fetcher.fetch(
                    shard.start, shard.end, node_id=self.node_id, interval=self.interval
                )
                frame, conformance = self.b.conformance.check(
                    raw, interval=self.interval, detect_gaps=False
                )
                self.report.conformance.merge(conformance)
                return frame.filter(pl.col("ts").is_between(shard.start, shard.end))
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def write_with_retries(self, frame: pl.DataFrame, held: HeldLease, log: Any) -> int:
        """Write the shard's rows; a failed write (e.g. the connection reset mid-batch) is
        retried with the same backoff and without refetching. Safe because the store
        upserts: rows of a batch that half-landed are simply written again."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.cfg.max_attempts),
            wait=self._backoff,
            retry=retry_if_exception(_retryable_write),
            before_sleep=lambda state: self._on_retry(state, log),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                held.raise_if_lost()
                # the token goes to storage: a newer holder's bars are never replaced
                return await self.b.store.write(
                    self.node_id, self.interval, frame, token=held.token
                )
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _backoff(self, state: RetryCallState) -> float:
        base = self.cfg.retry_backoff_ms / 1000 * 2 ** (state.attempt_number - 1)
        base = min(base, self.cfg.retry_backoff_max_ms / 1000)
        return float(base * (1 + self.b._rng.uniform(-self.cfg.jitter, self.cfg.jitter)))

    def _on_retry(self, state: RetryCallState, log: Any) -> None:
        self.b.metrics.backfill_retry_total.labels(**self.series).inc()
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("seamless.backfill.retry", attempt=state.attempt_number, error=str(error))

    def _count(self, outcome: str) -> None:
        self.b.metrics.backfill_shards_total.labels(**self.series, outcome=outcome).inc()


def _retryable_write(exc: BaseException) -> bool:
    return isinstance(exc, StorageError) and not isinstance(exc, WriteFenced)


def _retryable(exc: BaseException) -> bool:
    # A conformance block is a property of the data, not a transient fault; a lost lease
    # is final for this holder.
    return not isinstance(
        exc, ConformancePipelineError | LeaseLost | WriteFenced | asyncio.CancelledError
    )
