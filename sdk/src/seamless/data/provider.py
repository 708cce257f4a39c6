"""The Seamless Data Provider: one `fetch` over cache, storage, backfill and live.

    provider = SeamlessDataProvider(store=store, fetcher=fetcher, coordinator=coordinator)
    result = await provider.fetch(start, end, node_id="btc-usdt-1m", interval=60)
    result.frame           # polars: ts (epoch s), open, high, low, close, volume
    result.metadata        # coverage, sources, SLA phase timings, downgrade, conformance
    result.fingerprint     # sha256:..., computed on first access

Sources are tried in QMTL's order: an in-memory cache (TTL, bounded), the bar store, a
backfill through the coordinator, then the live feed for bars not yet closed. The strategy
decides how far down that list a request may go:

- FAIL_FAST: cache and storage only; anything missing raises `CoverageUnavailable`.
- AUTO_BACKFILL: fill what is missing synchronously, then answer.
- PARTIAL_FILL: answer with what is stored now (downgraded) and backfill in the background.
- SEAMLESS: storage, then synchronous backfill, then the live tail.

Every phase is timed against the `SLAPolicy`; see `seamless.data.sla` for what a breach does.
Bad arguments raise `InvalidRequestError` before anything is read or written.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import polars as pl

from seamless.coordination.interface import Coordinator
from seamless.data import coverage as cov
from seamless.data.artifacts import Artifact, ArtifactPublisher, fingerprint
from seamless.data.backfill import BackfillConfig, Backfiller, BackfillReport
from seamless.data.bars import empty_bars
from seamless.data.conformance import CONFORMANCE_VERSION, ConformancePipeline, ConformanceReport
from seamless.data.coverage import Range
from seamless.data.fetcher import DataFetcher
from seamless.data.live import LiveFeed, collect
from seamless.data.sla import Downgrade, OnViolation, Phase, SLAClock, SLAPolicy
from seamless.data.storage.base import BarStore
from seamless.errors import (
    ConformancePipelineError,
    CoordinatorUnavailable,
    CoverageUnavailable,
    InvalidRequestError,
    SchemaValidationError,
    SeamlessError,
)
from seamless.logging import get_logger
from seamless.metrics import SeamlessMetrics

NODE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,255}$")
NODE_ID_FORM = (
    "1-256 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
)
# Flags that describe the request's shape rather than bad data: gaps are declared in the
# coverage metadata and governed by the SLA (min_coverage, max_sync_gap_bars).
_NON_BLOCKING_FLAGS = frozenset({"gap"})


class Strategy(StrEnum):
    FAIL_FAST = "fail_fast"
    AUTO_BACKFILL = "auto_backfill"
    PARTIAL_FILL = "partial_fill"
    SEAMLESS = "seamless"


@dataclass
class FetchMetadata:
    node_id: str
    interval: int
    start: int
    end: int
    strategy: Strategy
    coverage: list[Range]
    missing: list[Range]
    requested_bars: int
    served_bars: int
    sources: list[str]
    phase_ms: dict[str, float]
    downgrade: Downgrade | None
    conformance: ConformanceReport
    backfill: BackfillReport | None = None
    lag_seconds: float | None = None
    world_id: str = ""
    as_of: str = ""
    _fingerprint: Callable[[], str] | None = field(default=None, repr=False)
    _fingerprint_value: str | None = field(default=None, repr=False)

    @property
    def coverage_ratio(self) -> float:
        return self.served_bars / self.requested_bars if self.requested_bars else 1.0

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def fingerprint(self) -> str:
        """The canonical dataset fingerprint (``sha256:...``), computed once on demand so a
        caller that never asks does not pay for hashing the frame."""
        if self._fingerprint_value is None:
            assert self._fingerprint is not None
            self._fingerprint_value = self._fingerprint()
        return self._fingerprint_value

    def as_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "interval": self.interval,
            "start": self.start,
            "end": self.end,
            "strategy": self.strategy.value,
            "coverage": [[s, e] for s, e in self.coverage],
            "missing": [[s, e] for s, e in self.missing],
            "coverage_ratio": self.coverage_ratio,
            "sources": list(self.sources),
            "phase_ms": dict(self.phase_ms),
            "downgrade": None
            if self.downgrade is None
            else {"mode": self.downgrade.mode.value, "reasons": list(self.downgrade.reasons)},
            "conformance": self.conformance.as_dict(),
            "lag_seconds": self.lag_seconds,
            "fingerprint": self.fingerprint,
        }


@dataclass
class FetchResult:
    frame: pl.DataFrame
    metadata: FetchMetadata

    @property
    def fingerprint(self) -> str:
        return self.metadata.fingerprint


@dataclass
class _CacheEntry:
    result: FetchResult
    expires: float


class _TTLCache:
    """A bounded LRU whose entries expire after ``ttl_s``."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], _CacheEntry] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> FetchResult | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.result

    def put(self, key: tuple[Any, ...], result: FetchResult) -> None:
        if self.max_entries <= 0 or self.ttl_s <= 0:
            return
        self._entries[key] = _CacheEntry(result, time.monotonic() + self.ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def validate_request(start: Any, end: Any, node_id: Any, interval: Any) -> None:
    """Raise `InvalidRequestError` naming the first bad argument and its valid form."""
    if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
        raise InvalidRequestError("interval", interval, "a positive integer number of seconds")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequestError(name, value, "a non-negative integer epoch second")
        if value % interval:
            lower = value - value % interval
            raise InvalidRequestError(
                name,
                value,
                f"a multiple of interval={interval} (on the bar grid), e.g. {lower} or "
                f"{lower + interval}",
            )
    if end < start:
        raise InvalidRequestError("end", end, f"end >= start (start={start})")
    if not isinstance(node_id, str) or not NODE_ID_PATTERN.match(node_id):
        raise InvalidRequestError("node_id", node_id, NODE_ID_FORM)


class SeamlessDataProvider:
    def __init__(
        self,
        *,
        store: BarStore,
        fetcher: DataFetcher | None = None,
        coordinator: Coordinator | None = None,
        live_feed: LiveFeed | None = None,
        strategy: Strategy = Strategy.SEAMLESS,
        sla: SLAPolicy | None = None,
        conformance: ConformancePipeline | None = None,
        backfill: BackfillConfig | None = None,
        publisher: ArtifactPublisher | None = None,
        metrics: SeamlessMetrics | None = None,
        clock: Callable[[], float] | None = None,
        cache_ttl_s: float = 60.0,
        cache_max_entries: int = 128,
        world_id: str = "",
    ) -> None:
        """``clock`` (epoch seconds) marks which bars have closed: bars after the last closed
        one are never backfilled, only served by `live_feed`. Without a clock every bar is
        backfillable and there is no live tail."""
        self.store = store
        self.fetcher = fetcher
        self.coordinator = coordinator
        self.live_feed = live_feed
        self.strategy = strategy
        self.sla = sla if sla is not None else SLAPolicy()
        self.conformance = conformance if conformance is not None else ConformancePipeline()
        self.metrics = metrics if metrics is not None else SeamlessMetrics.default()
        self.publisher = publisher
        self.clock = clock
        self.world_id = world_id
        self.backfiller: Backfiller | None = None
        if fetcher is not None and coordinator is not None:
            self.backfiller = Backfiller(
                coordinator=coordinator,
                fetcher=fetcher,
                store=store,
                conformance=self.conformance,
                config=backfill,
                metrics=self.metrics,
            )
        self._cache = _TTLCache(cache_ttl_s, cache_max_entries)
        self._background: set[asyncio.Task[BackfillReport]] = set()
        self._unwinding: set[asyncio.Future[Any]] = set()  # cancelled reads, finishing
        self.last_conformance_report: ConformanceReport | None = None
        self._log = get_logger("seamless.provider")

    # --- public API ---------------------------------------------------------------------

    async def fetch(
        self,
        start: int,
        end: int,
        *,
        node_id: str,
        interval: int,
        strategy: Strategy | str | None = None,
        world_id: str | None = None,
        as_of: str = "",
    ) -> FetchResult:
        """Bars of ``[start, end]`` (inclusive, epoch seconds on the interval grid)."""
        validate_request(start, end, node_id, interval)
        mode = self._strategy(strategy)
        world = self.world_id if world_id is None else world_id
        request = _Request(self, start, end, node_id, interval, mode, world, as_of)
        return await request.run()

    async def wait_background(self, timeout_s: float | None = None) -> list[BackfillReport]:
        """Wait for background backfills (PARTIAL_FILL, or ones that outlived their SLA)."""
        if not self._background:
            return []
        done, _pending = await asyncio.wait(set(self._background), timeout=timeout_s)
        return [t.result() for t in done if not t.cancelled() and t.exception() is None]

    @property
    def background_pending(self) -> int:
        return len(self._background)

    def invalidate_cache(self) -> None:
        self._cache = _TTLCache(self._cache.ttl_s, self._cache.max_entries)

    async def aclose(self) -> None:
        await self.wait_background()
        if self._unwinding:
            await asyncio.wait(set(self._unwinding))

    def _unwind(self, cancelled: asyncio.Future[Any]) -> None:
        """Keep a cancelled read referenced until it has unwound; what it raised is moot."""
        self._unwinding.add(cancelled)
        cancelled.add_done_callback(self._unwound)

    def _unwound(self, future: asyncio.Future[Any]) -> None:
        self._unwinding.discard(future)
        if not future.cancelled():
            future.exception()  # retrieved: its caller has moved on

    # --- internals ----------------------------------------------------------------------

    def _strategy(self, value: Strategy | str | None) -> Strategy:
        if value is None:
            return self.strategy
        try:
            return Strategy(value)
        except ValueError:
            raise InvalidRequestError(
                "strategy", value, "one of " + ", ".join(s.value for s in Strategy)
            ) from None

    def _spawn(self, coro: Any) -> asyncio.Task[BackfillReport]:
        task: asyncio.Task[BackfillReport] = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _horizon_end(self, interval: int) -> int | None:
        """Timestamp of the last closed bar, or None without a clock."""
        if self.clock is None:
            return None
        return (int(self.clock()) // interval - 1) * interval


class _Request:
    """The state of one `fetch` call."""

    def __init__(
        self,
        provider: SeamlessDataProvider,
        start: int,
        end: int,
        node_id: str,
        interval: int,
        strategy: Strategy,
        world_id: str,
        as_of: str,
    ) -> None:
        self.p = provider
        self.start, self.end, self.node_id, self.interval = start, end, node_id, interval
        self.strategy = strategy
        self.world_id, self.as_of = world_id, as_of
        self.sla = SLAClock(provider.sla, node_id)
        self.sources: list[str] = []
        self.series = {"node_id": node_id, "interval": str(interval), "world_id": world_id}
        self.backfill_report: BackfillReport | None = None
        self.extra_reasons: list[str] = []
        self.log = provider._log.bind(node_id=node_id, interval=interval, start=start, end=end)

    async def run(self) -> FetchResult:
        cache_key = (self.node_id, self.interval, self.start, self.end, self.world_id, self.as_of)
        cached = self.p._cache.get(cache_key)
        if cached is not None:
            self.p.metrics.cache_hit_total.labels(**self.series).inc()
            return cached
        self.p.metrics.cache_miss_total.labels(**self.series).inc()

        frame = await self._read_storage(Phase.STORAGE_WAIT)
        if frame.height:
            self.sources.append("storage")
        missing = cov.missing(self._coverage(frame), self.start, self.end, self.interval)
        if missing:
            frame, missing = await self._fill(frame, missing)

        # Bars from our store were conformed on the way in; live bars were not.
        frame, report = self._conform(frame, stored="live" not in self.sources)
        coverage = self._coverage(frame)
        missing = cov.missing(coverage, self.start, self.end, self.interval)
        lag = self._lag(frame)
        requested = (self.end - self.start) // self.interval + 1
        self.sla.check_quality(frame.height / requested, lag)
        self.sla.finish()  # total deadline: raises under fail_fast
        downgrade = self.sla.downgrade(self.extra_reasons)
        meta = FetchMetadata(
            node_id=self.node_id,
            interval=self.interval,
            start=self.start,
            end=self.end,
            strategy=self.strategy,
            coverage=coverage,
            missing=missing,
            requested_bars=requested,
            served_bars=frame.height,
            sources=self.sources,
            phase_ms=dict(self.sla.phase_ms),
            downgrade=downgrade,
            conformance=report,
            backfill=self.backfill_report,
            lag_seconds=lag,
            world_id=self.world_id,
            as_of=self.as_of,
        )
        meta._fingerprint = lambda: fingerprint(
            frame,
            node_id=self.node_id,
            interval=self.interval,
            coverage_bounds=coverage,
            conformance_version=CONFORMANCE_VERSION,
        )
        result = FetchResult(frame, meta)
        self._observe(meta)
        if downgrade is None and not missing:
            self.p._cache.put(
                (self.node_id, self.interval, self.start, self.end, self.world_id, self.as_of),
                result,
            )
            self._publish(result)
        return result

    # --- sources ------------------------------------------------------------------------

    async def _read_storage(self, phase: Phase) -> pl.DataFrame:
        began = time.monotonic()
        timeout = self.sla.remaining_ms(phase)
        read = asyncio.ensure_future(
            self.p.store.read(self.node_id, self.interval, self.start, self.end)
        )
        try:
            await asyncio.wait({read}, timeout=None if timeout is None else timeout / 1000)
        finally:
            if not read.done():
                # The deadline is the caller's: the read unwinds off the request's path (a
                # PG-wire query cancel waits on the server, measured at 2 s under load).
                read.cancel()
                self.p._unwind(read)
        if read.done():
            frame = read.result()
        else:
            frame = empty_bars()
            self.extra_reasons.append(f"{phase.value}: storage read timed out")
        self.sla.record(phase, (time.monotonic() - began) * 1000)
        return frame

    async def _fill(
        self, frame: pl.DataFrame, missing: list[Range]
    ) -> tuple[pl.DataFrame, list[Range]]:
        if self.strategy is Strategy.FAIL_FAST:
            raise CoverageUnavailable(self.node_id, [(s, e) for s, e in missing])
        horizon = self.p._horizon_end(self.interval)
        backfillable = missing if horizon is None else cov.clip(missing, 0, horizon, self.interval)
        gap_bars = sum(r.bars(self.interval) for r in backfillable)
        limit = self.p.sla.max_sync_gap_bars
        sync_allowed = limit is None or gap_bars <= limit
        if not sync_allowed:
            self.sla.check_sync_gap(gap_bars)  # raises under fail_fast
        if backfillable:
            if self.strategy is Strategy.PARTIAL_FILL or not sync_allowed:
                self._background_backfill(backfillable, horizon)
            else:
                frame = await self._backfill(frame, backfillable, horizon)
        missing = cov.missing(self._coverage(frame), self.start, self.end, self.interval)
        if missing and self.strategy is Strategy.SEAMLESS and self.p.live_feed is not None:
            frame = await self._live_tail(frame, missing, horizon)
        return frame, cov.missing(self._coverage(frame), self.start, self.end, self.interval)

    def _require_backfiller(self) -> Backfiller:
        if self.p.backfiller is None:
            raise SeamlessError(
                f"strategy {self.strategy.value} needs a fetcher and a coordinator to backfill "
                f"node {self.node_id!r}; configure both, or use strategy fail_fast"
            )
        return self.p.backfiller

    def _background_backfill(self, ranges: list[Range], horizon: int | None) -> None:
        backfiller = self._require_backfiller()
        self.p._spawn(
            backfiller.run(
                self.node_id,
                self.interval,
                ranges,
                horizon_end=horizon,
                world_id=self.world_id,
                as_of=self.as_of,
            )
        )
        self.extra_reasons.append(
            f"partial_fill: {sum(r.bars(self.interval) for r in ranges)} bar(s) missing, "
            "backfill scheduled in the background"
        )

    async def _backfill(
        self, frame: pl.DataFrame, ranges: list[Range], horizon: int | None
    ) -> pl.DataFrame:
        backfiller = self._require_backfiller()
        began = time.monotonic()
        budget = self.sla.remaining_ms(Phase.BACKFILL_WAIT)
        deadline = None if budget is None else began + budget / 1000
        task = self.p._spawn(
            backfiller.run(
                self.node_id,
                self.interval,
                ranges,
                horizon_end=horizon,
                deadline=deadline,
                world_id=self.world_id,
                as_of=self.as_of,
            )
        )
        # The run stops claiming at the deadline but lets in-flight shards finish (so no
        # lease dangles); we stop waiting at the deadline and serve what is stored by then.
        done, _ = await asyncio.wait({task}, timeout=None if budget is None else budget / 1000)
        report: BackfillReport | None = None
        if task in done:
            report = task.result()
            self.backfill_report = report
            # Strict schema governance blocks whatever partial_ok says (issue 14).
            strict = [b for b in report.blocked if isinstance(b, SchemaValidationError)]
            if strict or (report.blocked and not self.p.conformance.partial_ok):
                # A blocked batch is bad data, not a slow or partial backfill: raise it, as
                # the seeds ask (ConformancePipelineError unless partial_ok).
                blocked = (strict or report.blocked)[0]
                if isinstance(blocked.report, ConformanceReport):
                    self.p.last_conformance_report = blocked.report
                raise blocked
            if report.coordinator_errors:
                self._coordinator_trouble(report)
            if report.failed:
                self.extra_reasons.append(f"backfill: {len(report.failed)} shard(s) failed")
            # A shard whose lease was lost, or still held elsewhere at the deadline, is not
            # in the answer either: say so, or the caller gets a silent partial frame.
            if report.abandoned:
                self.extra_reasons.append(
                    f"backfill: {len(report.abandoned)} shard(s) abandoned (lease lost)"
                )
            if report.unresolved:
                self.extra_reasons.append(
                    f"backfill: {len(report.unresolved)} shard(s) still held by another worker"
                )
        else:
            self.extra_reasons.append("backfill_wait: shards still running at the deadline")
        refreshed = await self._read_storage_after_backfill()
        self.sla.record(Phase.BACKFILL_WAIT, (time.monotonic() - began) * 1000)
        settled = report is not None and (report.completed or report.done_elsewhere)
        if settled or refreshed.height > frame.height:
            self.sources.append("backfill")
        return refreshed

    def _coordinator_trouble(self, report: BackfillReport) -> None:
        detail = report.coordinator_errors[0]
        if self.p.sla.on_violation is OnViolation.FAIL_FAST:
            # Never read an unreachable coordinator as "no lease" (QMTL's silent skip).
            raise CoordinatorUnavailable(
                f"backfill of node {self.node_id!r} could not reach the coordinator: {detail}"
            )
        self.extra_reasons.append(f"coordinator unavailable: {detail}")

    async def _read_storage_after_backfill(self) -> pl.DataFrame:
        return await self.p.store.read(self.node_id, self.interval, self.start, self.end)

    async def _live_tail(
        self, frame: pl.DataFrame, missing: list[Range], horizon: int | None
    ) -> pl.DataFrame:
        assert self.p.live_feed is not None
        tail_start = (
            missing[-1].start
            if horizon is None
            else max(missing[-1].start, horizon + self.interval)
        )
        if missing[-1].end != self.end or tail_start > self.end:
            return frame
        budget = self.sla.remaining_ms(Phase.LIVE_WAIT)
        got = await collect(
            self.p.live_feed,
            node_id=self.node_id,
            interval=self.interval,
            start=tail_start,
            end=self.end,
            timeout_s=None if budget is None else budget / 1000,
        )
        self.sla.record(Phase.LIVE_WAIT, got.waited_ms)
        if got.timed_out:
            self.extra_reasons.append(f"live_wait: {got.frame.height} live bar(s) by the deadline")
        if got.frame.height:
            self.sources.append("live")
            frame = (
                pl.concat([frame, got.frame])
                .unique(subset=["ts"], keep="first", maintain_order=True)
                .sort("ts")
            )
        return frame

    # --- finishing ------------------------------------------------------------------------

    def _conform(
        self, frame: pl.DataFrame, *, stored: bool
    ) -> tuple[pl.DataFrame, ConformanceReport]:
        pipeline = self.p.conformance
        if stored:
            out, report = pipeline.verify_stored(frame, interval=self.interval)
        else:
            out, report = pipeline.normalize(frame, interval=self.interval)
        self.p.last_conformance_report = report
        blocking = {k: v for k, v in report.flags.items() if k not in _NON_BLOCKING_FLAGS}
        if blocking and not self.p.conformance.partial_ok:
            raise ConformancePipelineError(
                report, "conformance flags block the response: " + "; ".join(report.warnings)
            )
        return out, report

    def _coverage(self, frame: pl.DataFrame) -> list[Range]:
        if frame.height == 0:
            return []
        return cov.from_timestamps(frame["ts"].to_numpy(), self.interval)

    def _lag(self, frame: pl.DataFrame) -> float | None:
        """Seconds between now and the newest bar's close, when the window reaches now."""
        horizon = self.p._horizon_end(self.interval)
        if horizon is None or self.p.clock is None or self.end < horizon:
            return None
        newest = int(frame["ts"].max()) if frame.height else self.start - self.interval  # type: ignore[arg-type]
        return max(0.0, self.p.clock() - (newest + self.interval))

    def _observe(self, meta: FetchMetadata) -> None:
        m = self.p.metrics
        for phase, ms in meta.phase_ms.items():
            m.observe_phase(
                node_id=self.node_id,
                interval=self.interval,
                world_id=self.world_id,
                phase=phase,
                duration_ms=ms,
            )
        m.coverage_ratio.labels(**self.series).set(meta.coverage_ratio)
        if meta.lag_seconds is not None:
            m.live_staleness_seconds.labels(**self.series).set(meta.lag_seconds)
        for flag, count in meta.conformance.flags.items():
            m.conformance_flag_total.labels(**self.series, flag_type=flag).inc(count)
        if meta.conformance.warnings:
            m.conformance_warning_total.labels(**self.series).inc(len(meta.conformance.warnings))
        if meta.downgrade is not None:
            reason = meta.downgrade.reasons[0].split(":")[0] if meta.downgrade.reasons else ""
            counter = (
                m.domain_gate_holds
                if meta.downgrade.mode is OnViolation.HOLD
                else m.partial_fill_returns
            )
            counter.labels(**self.series, reason=reason).inc()
            self.log.warning(
                "seamless.sla.downgrade",
                mode=meta.downgrade.mode.value,
                reasons=meta.downgrade.reasons,
            )
        self.log.info(
            "seamless.fetch",
            sources=meta.sources,
            coverage_ratio=round(meta.coverage_ratio, 6),
            phase_ms={k: round(v, 3) for k, v in meta.phase_ms.items()},
        )

    def _publish(self, result: FetchResult) -> None:
        publisher = self.p.publisher
        if publisher is None or result.frame.height == 0:
            return
        meta = result.metadata
        publisher.submit(
            Artifact(
                node_id=meta.node_id,
                interval=meta.interval,
                start=meta.start,
                end=meta.end,
                fingerprint=meta.fingerprint,
                frame=result.frame,
                coverage=meta.coverage,
                conformance=meta.conformance.as_dict(),
            )
        )
