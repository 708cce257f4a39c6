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
from collections.abc import Callable
from typing import Any

from seamless.coordination.interface import Coordinator
from seamless.data.artifacts import ArtifactPublisher
from seamless.data.backfill import BackfillConfig, Backfiller, BackfillReport
from seamless.data.conformance import ConformancePipeline, ConformanceReport
from seamless.data.fetcher import DataFetcher
from seamless.data.live import LiveFeed
from seamless.data.provider.cache import ResultCache
from seamless.data.provider.models import FetchResult, Strategy, validate_request
from seamless.data.provider.pipeline import FetchPipeline, FetchRequest
from seamless.data.sla import SLAPolicy
from seamless.data.storage.base import BarStore
from seamless.errors import InvalidRequestError
from seamless.logging import get_logger
from seamless.metrics import SeamlessMetrics


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
        self._cache = ResultCache(cache_ttl_s, cache_max_entries)
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
        request = FetchRequest(start, end, node_id, interval, mode, world, as_of)
        return await FetchPipeline(self, request).run()

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
        self._cache.clear()

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
