"""One SDK per load process: the data provider wired to the target's coordinator and
QuestDB, with the deterministic synthetic fetcher as the upstream market-data source.

`timed_fetch` runs one request of the workload and returns what the users report: the
wall-clock total measured here (a cache hit's own metadata still carries the timings of the
request that filled the cache), the SLA phases the provider timed, and where the bars came
from.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from seamless.backfill import BackfillConfig
from seamless.coordinator_client import CoordinatorClient
from seamless.fetcher import SyntheticFetcher
from seamless.metrics import SeamlessMetrics
from seamless.provider import FetchResult, SeamlessDataProvider, Strategy
from seamless.sla import SLAPolicy
from seamless.storage.questdb import QuestDBBarStore

from loadtest.target import LoadTarget
from loadtest.workload import INTERVAL, FetchRequest


@dataclass(frozen=True)
class FetchOutcome:
    total_ms: float
    phase_ms: dict[str, float]
    source: str  # cache, storage, backfill (or a "+"-joined mix)
    rows: int


class SdkRuntime:
    def __init__(
        self,
        target: LoadTarget,
        *,
        preset: str = "baseline",
        presets_file: str | None = None,
        fetch_latency_ms: float = 5.0,
        pg_pool: int = 8,
        cache_entries: int = 256,
    ) -> None:
        self.store = QuestDBBarStore(target.questdb_dsn, target.questdb_ilp, pool_size=pg_pool)
        self.coordinator = CoordinatorClient(
            target.coordinator_url,
            token=target.coordinator_token,
            worker_id=f"loadtest-{os.getpid()}",
        )
        self.fetcher = SyntheticFetcher(seed=7, latency_ms=fetch_latency_ms)
        self.metrics = SeamlessMetrics(CollectorRegistry())
        self.provider = SeamlessDataProvider(
            store=self.store,
            fetcher=self.fetcher,
            coordinator=self.coordinator,
            strategy=Strategy.SEAMLESS,
            sla=SLAPolicy.preset(preset, presets_file),
            backfill=BackfillConfig(),
            metrics=self.metrics,
            cache_max_entries=cache_entries,
        )
        # the last result served per request: the same object again means a cache hit
        self._served: dict[tuple[str, int, int], weakref.ref[FetchResult]] = {}

    async def timed_fetch(self, request: FetchRequest) -> FetchOutcome:
        key = (request.node_id, request.start, request.end)
        began = time.perf_counter()
        result = await self.provider.fetch(
            request.start, request.end, node_id=request.node_id, interval=INTERVAL
        )
        total_ms = (time.perf_counter() - began) * 1000.0
        previous = self._served.get(key)
        if previous is not None and previous() is result:
            return FetchOutcome(total_ms, {}, "cache", result.frame.height)
        self._served[key] = weakref.ref(result)
        meta = result.metadata
        phases = {k: v for k, v in meta.phase_ms.items() if k != "total"}
        source = "+".join(meta.sources) or "empty"
        return FetchOutcome(total_ms, phases, source, result.frame.height)

    async def seed(self, requests: list[FetchRequest]) -> None:
        """Backfill the seeded region of every series at once, before the load starts."""
        await asyncio.gather(*(self.timed_fetch(request) for request in requests))

    async def aclose(self) -> None:
        await self.provider.aclose()
        await self.coordinator.aclose()
        await self.store.aclose()
