"""One fetch, stage by stage: cache, storage, the fill (backfill, background backfill, live
tail), conformance, the SLA verdict, metrics, caching and publishing the answer.

`FetchRequest` is what was asked (validated, immutable); `FetchState` is everything a
fetch learns on its way (sources used, downgrade reasons, the backfill report, the SLA
clock); `FetchPipeline` runs the stages over the two and the provider's parts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from seamless.data import coverage as cov
from seamless.data.artifacts import Artifact, fingerprint
from seamless.data.backfill import Backfiller, BackfillReport
from seamless.data.bars import empty_bars
from seamless.data.conformance import CONFORMANCE_VERSION, ConformanceReport
from seamless.data.coverage import Range
from seamless.data.live import collect
from seamless.data.provider.cache import CacheKey
from seamless.data.provider.models import FetchMetadata, FetchResult, Strategy
from seamless.data.sla import OnViolation, Phase, SLAClock
from seamless.errors import (
    ConformancePipelineError,
    CoordinatorUnavailable,
    CoverageUnavailable,
    SchemaValidationError,
    SeamlessError,
)

if TYPE_CHECKING:
    from seamless.data.provider.provider import SeamlessDataProvider

# Flags that describe the request's shape rather than bad data: gaps are declared in the
# coverage metadata and governed by the SLA (min_coverage, max_sync_gap_bars).
_NON_BLOCKING_FLAGS = frozenset({"gap"})


@dataclass(frozen=True)
class FetchRequest:
    """What was asked, validated (`validate_request`) before a pipeline is built."""

    start: int
    end: int
    node_id: str
    interval: int
    strategy: Strategy
    world_id: str
    as_of: str

    @property
    def cache_key(self) -> CacheKey:
        return (self.node_id, self.interval, self.start, self.end, self.world_id, self.as_of)

    @property
    def requested_bars(self) -> int:
        return (self.end - self.start) // self.interval + 1

    @property
    def series(self) -> dict[str, str]:
        """The labels of this request's metric series."""
        return {"node_id": self.node_id, "interval": str(self.interval), "world_id": self.world_id}


@dataclass
class FetchState:
    """What one fetch learns on its way: the SLA clock, the sources that served bars, the
    reasons to downgrade the answer beyond the clock's own, and the backfill's report."""

    sla: SLAClock
    sources: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    backfill_report: BackfillReport | None = None


class FetchPipeline:
    """Runs the stages of one `fetch` over its request and state."""

    def __init__(self, provider: SeamlessDataProvider, request: FetchRequest) -> None:
        self.p = provider
        self.req = request
        self.state = FetchState(sla=SLAClock(provider.sla, request.node_id))
        self.log = provider._log.bind(
            node_id=request.node_id,
            interval=request.interval,
            start=request.start,
            end=request.end,
        )

    async def run(self) -> FetchResult:
        req, metrics = self.req, self.p.metrics
        cached = self.p._cache.get(req.cache_key)
        if cached is not None:
            metrics.cache_hit_total.labels(**req.series).inc()
            return cached
        metrics.cache_miss_total.labels(**req.series).inc()
        frame = await self._gather()
        # Bars from our store were conformed on the way in; live bars were not.
        frame, report = self._conform(frame, stored="live" not in self.state.sources)
        result = self._answer(frame, report)
        self._observe(result.metadata)
        if result.metadata.downgrade is None and result.metadata.complete:
            self.p._cache.put(req.cache_key, result)
            self._publish(result)
        return result

    async def _gather(self) -> pl.DataFrame:
        """Storage first, then whatever the strategy allows for what storage lacks."""
        frame = await self._read_storage(Phase.STORAGE_WAIT)
        if frame.height:
            self.state.sources.append("storage")
        missing = self._missing(frame)
        if missing:
            frame = await self._fill(frame, missing)
        return frame

    def _answer(self, frame: pl.DataFrame, report: ConformanceReport) -> FetchResult:
        """The SLA verdict on the conformed frame, and the result with its metadata."""
        req, state = self.req, self.state
        coverage = self._coverage(frame)
        missing = cov.missing(coverage, req.start, req.end, req.interval)
        lag = self._lag(frame)
        state.sla.check_quality(frame.height / req.requested_bars, lag)
        state.sla.finish()  # total deadline: raises under fail_fast
        meta = FetchMetadata(
            node_id=req.node_id,
            interval=req.interval,
            start=req.start,
            end=req.end,
            strategy=req.strategy,
            coverage=coverage,
            missing=missing,
            requested_bars=req.requested_bars,
            served_bars=frame.height,
            sources=state.sources,
            phase_ms=dict(state.sla.phase_ms),
            downgrade=state.sla.downgrade(state.reasons),
            conformance=report,
            backfill=state.backfill_report,
            lag_seconds=lag,
            world_id=req.world_id,
            as_of=req.as_of,
        )
        meta._fingerprint = lambda: fingerprint(
            frame,
            node_id=req.node_id,
            interval=req.interval,
            coverage_bounds=coverage,
            conformance_version=CONFORMANCE_VERSION,
        )
        return FetchResult(frame, meta)

    # --- sources ------------------------------------------------------------------------

    async def _read_storage(self, phase: Phase) -> pl.DataFrame:
        began = time.monotonic()
        timeout = self.state.sla.remaining_ms(phase)
        read = asyncio.ensure_future(
            self.p.store.read(self.req.node_id, self.req.interval, self.req.start, self.req.end)
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
            self.state.reasons.append(f"{phase.value}: storage read timed out")
        self.state.sla.record(phase, (time.monotonic() - began) * 1000)
        return frame

    async def _fill(self, frame: pl.DataFrame, missing: list[Range]) -> pl.DataFrame:
        if self.req.strategy is Strategy.FAIL_FAST:
            raise CoverageUnavailable(self.req.node_id, [(s, e) for s, e in missing])
        horizon = self.p._horizon_end(self.req.interval)
        backfillable = (
            missing if horizon is None else cov.clip(missing, 0, horizon, self.req.interval)
        )
        gap_bars = sum(r.bars(self.req.interval) for r in backfillable)
        limit = self.p.sla.max_sync_gap_bars
        sync_allowed = limit is None or gap_bars <= limit
        if not sync_allowed:
            self.state.sla.check_sync_gap(gap_bars)  # raises under fail_fast
        if backfillable:
            if self.req.strategy is Strategy.PARTIAL_FILL or not sync_allowed:
                self._background_backfill(backfillable, horizon)
            else:
                frame = await self._backfill(frame, backfillable, horizon)
        missing = self._missing(frame)
        if missing and self.req.strategy is Strategy.SEAMLESS and self.p.live_feed is not None:
            frame = await self._live_tail(frame, missing, horizon)
        return frame

    def _require_backfiller(self) -> Backfiller:
        if self.p.backfiller is None:
            raise SeamlessError(
                f"strategy {self.req.strategy.value} needs a fetcher and a coordinator to backfill "
                f"node {self.req.node_id!r}; configure both, or use strategy fail_fast"
            )
        return self.p.backfiller

    def _background_backfill(self, ranges: list[Range], horizon: int | None) -> None:
        backfiller = self._require_backfiller()
        self.p._spawn(
            backfiller.run(
                self.req.node_id,
                self.req.interval,
                ranges,
                horizon_end=horizon,
                world_id=self.req.world_id,
                as_of=self.req.as_of,
            )
        )
        self.state.reasons.append(
            f"partial_fill: {sum(r.bars(self.req.interval) for r in ranges)} bar(s) missing, "
            "backfill scheduled in the background"
        )

    async def _backfill(
        self, frame: pl.DataFrame, ranges: list[Range], horizon: int | None
    ) -> pl.DataFrame:
        backfiller = self._require_backfiller()
        began = time.monotonic()
        budget = self.state.sla.remaining_ms(Phase.BACKFILL_WAIT)
        deadline = None if budget is None else began + budget / 1000
        task = self.p._spawn(
            backfiller.run(
                self.req.node_id,
                self.req.interval,
                ranges,
                horizon_end=horizon,
                deadline=deadline,
                world_id=self.req.world_id,
                as_of=self.req.as_of,
            )
        )
        # The run stops claiming at the deadline but lets in-flight shards finish (so no
        # lease dangles); we stop waiting at the deadline and serve what is stored by then.
        done, _ = await asyncio.wait({task}, timeout=None if budget is None else budget / 1000)
        report: BackfillReport | None = None
        if task in done:
            report = task.result()
            self.state.backfill_report = report
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
                self.state.reasons.append(f"backfill: {len(report.failed)} shard(s) failed")
            # A shard whose lease was lost, or still held elsewhere at the deadline, is not
            # in the answer either: say so, or the caller gets a silent partial frame.
            if report.abandoned:
                self.state.reasons.append(
                    f"backfill: {len(report.abandoned)} shard(s) abandoned (lease lost)"
                )
            if report.unresolved:
                self.state.reasons.append(
                    f"backfill: {len(report.unresolved)} shard(s) still held by another worker"
                )
        else:
            self.state.reasons.append("backfill_wait: shards still running at the deadline")
        refreshed = await self._read_storage_after_backfill()
        self.state.sla.record(Phase.BACKFILL_WAIT, (time.monotonic() - began) * 1000)
        settled = report is not None and (report.completed or report.done_elsewhere)
        if settled or refreshed.height > frame.height:
            self.state.sources.append("backfill")
        return refreshed

    def _coordinator_trouble(self, report: BackfillReport) -> None:
        detail = report.coordinator_errors[0]
        if self.p.sla.on_violation is OnViolation.FAIL_FAST:
            # Never read an unreachable coordinator as "no lease" (QMTL's silent skip).
            raise CoordinatorUnavailable(
                f"backfill of node {self.req.node_id!r} could not reach the coordinator: {detail}"
            )
        self.state.reasons.append(f"coordinator unavailable: {detail}")

    async def _read_storage_after_backfill(self) -> pl.DataFrame:
        return await self.p.store.read(
            self.req.node_id, self.req.interval, self.req.start, self.req.end
        )

    async def _live_tail(
        self, frame: pl.DataFrame, missing: list[Range], horizon: int | None
    ) -> pl.DataFrame:
        assert self.p.live_feed is not None
        tail_start = (
            missing[-1].start
            if horizon is None
            else max(missing[-1].start, horizon + self.req.interval)
        )
        if missing[-1].end != self.req.end or tail_start > self.req.end:
            return frame
        budget = self.state.sla.remaining_ms(Phase.LIVE_WAIT)
        got = await collect(
            self.p.live_feed,
            node_id=self.req.node_id,
            interval=self.req.interval,
            start=tail_start,
            end=self.req.end,
            timeout_s=None if budget is None else budget / 1000,
        )
        self.state.sla.record(Phase.LIVE_WAIT, got.waited_ms)
        if got.timed_out:
            self.state.reasons.append(f"live_wait: {got.frame.height} live bar(s) by the deadline")
        if got.frame.height:
            self.state.sources.append("live")
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
            out, report = pipeline.verify_stored(frame, interval=self.req.interval)
        else:
            out, report = pipeline.normalize(frame, interval=self.req.interval)
        self.p.last_conformance_report = report
        blocking = {k: v for k, v in report.flags.items() if k not in _NON_BLOCKING_FLAGS}
        if blocking and not self.p.conformance.partial_ok:
            raise ConformancePipelineError(
                report, "conformance flags block the response: " + "; ".join(report.warnings)
            )
        return out, report

    def _missing(self, frame: pl.DataFrame) -> list[Range]:
        return cov.missing(self._coverage(frame), self.req.start, self.req.end, self.req.interval)

    def _coverage(self, frame: pl.DataFrame) -> list[Range]:
        if frame.height == 0:
            return []
        return cov.from_timestamps(frame["ts"].to_numpy(), self.req.interval)

    def _lag(self, frame: pl.DataFrame) -> float | None:
        """Seconds between now and the newest bar's close, when the window reaches now."""
        horizon = self.p._horizon_end(self.req.interval)
        if horizon is None or self.p.clock is None or self.req.end < horizon:
            return None
        newest = int(frame["ts"].max()) if frame.height else self.req.start - self.req.interval  # type: ignore[arg-type]
        return max(0.0, self.p.clock() - (newest + self.req.interval))

    def _observe(self, meta: FetchMetadata) -> None:
        m = self.p.metrics
        for phase, ms in meta.phase_ms.items():
            m.observe_phase(
                node_id=self.req.node_id,
                interval=self.req.interval,
                world_id=self.req.world_id,
                phase=phase,
                duration_ms=ms,
            )
        m.coverage_ratio.labels(**self.req.series).set(meta.coverage_ratio)
        if meta.lag_seconds is not None:
            m.live_staleness_seconds.labels(**self.req.series).set(meta.lag_seconds)
        for flag, count in meta.conformance.flags.items():
            m.conformance_flag_total.labels(**self.req.series, flag_type=flag).inc(count)
        if meta.conformance.warnings:
            m.conformance_warning_total.labels(**self.req.series).inc(
                len(meta.conformance.warnings)
            )
        if meta.downgrade is not None:
            reason = meta.downgrade.reasons[0].split(":")[0] if meta.downgrade.reasons else ""
            counter = (
                m.domain_gate_holds
                if meta.downgrade.mode is OnViolation.HOLD
                else m.partial_fill_returns
            )
            counter.labels(**self.req.series, reason=reason).inc()
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
