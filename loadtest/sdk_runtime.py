"""One SDK per load process: the data provider built from the target as a `seamless`
config by `seamless.factory.create_provider` (prod profile: coordinator health-checked,
QuestDB columnar reads and bulk ILP writes, the SLA preset by name), with the deterministic
synthetic fetcher as the upstream market-data source.

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
from typing import Any

from prometheus_client import CollectorRegistry
from seamless.config.loading import load_section
from seamless.data.provider import FetchResult, SeamlessDataProvider, Strategy
from seamless.data.storage.questdb import ilp_http_target
from seamless.factory import ProviderSettings, create_provider
from seamless.metrics import SeamlessMetrics
from seamless.testing import SyntheticFetcher

from loadtest.target import LoadTarget
from loadtest.workload import INTERVAL, FetchRequest


@dataclass(frozen=True)
class FetchOutcome:
    total_ms: float
    phase_ms: dict[str, float]
    source: str  # cache, storage, backfill (or a "+"-joined mix)
    rows: int


class SdkRuntime:
    def __init__(self, provider: SeamlessDataProvider, fetcher: SyntheticFetcher) -> None:
        self.provider = provider
        self.fetcher = fetcher
        self.metrics = provider.metrics
        # the last result served per request: the same object again means a cache hit
        self._served: dict[tuple[str, int, int], weakref.ref[FetchResult]] = {}

    @classmethod
    async def create(
        cls,
        target: LoadTarget,
        *,
        preset: str = "baseline",
        presets_file: str | None = None,
        fetch_latency_ms: float = 5.0,
        pg_pool: int = 8,
        cache_entries: int = 256,
    ) -> SdkRuntime:
        section: dict[str, Any] = {
            "profile": "prod",
            "coordinator_url": target.coordinator_url,
            "coordinator_token": target.coordinator_token,
            "questdb_dsn": target.questdb_dsn,
            "sla_preset": preset,
            "seamless_worker_id": f"loadtest-{os.getpid()}",
        }
        if presets_file:
            section["presets_file"] = presets_file
        # the target file is the whole config: the outer environment does not leak in
        config = load_section(section, env={}, source="load target")
        fetcher = SyntheticFetcher(seed=7, latency_ms=fetch_latency_ms)
        settings = ProviderSettings(
            strategy=Strategy.SEAMLESS,
            cache_max_entries=cache_entries,
            pg_pool_size=pg_pool,
            questdb_http_url=_http_url(target.questdb_ilp),
            metrics=SeamlessMetrics(CollectorRegistry()),
        )
        provider = await create_provider(config, fetcher=fetcher, settings=settings, env={})
        return cls(provider, fetcher)

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
        if self.provider.coordinator is not None:
            await self.provider.coordinator.aclose()
        await self.provider.store.aclose()


def _http_url(ilp_conf: str) -> str:
    """QuestDB's HTTP endpoint from the target's ILP/HTTP configuration string."""
    target = ilp_http_target(ilp_conf)
    if target is None:
        raise ValueError(f"questdb_ilp={ilp_conf!r}: expected http::addr=host:port;")
    return target[0]
