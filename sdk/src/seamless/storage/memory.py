"""An in-process bar store for dev profiles and unit tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import polars as pl

from seamless.fetcher import empty_bars
from seamless.storage.base import to_bar_frame


@dataclass
class MemoryBarStore:
    """Bars per ``(node_id, interval)``; writes upsert on ts like the QuestDB table does."""

    _series: dict[tuple[str, int], pl.DataFrame] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reads: int = 0
    writes: int = 0

    async def read(self, node_id: str, interval: int, start: int, end: int) -> pl.DataFrame:
        self.reads += 1
        series = self._series.get((node_id, interval))
        if series is None:
            return empty_bars()
        return series.filter(pl.col("ts").is_between(start, end))

    async def write(self, node_id: str, interval: int, frame: pl.DataFrame) -> int:
        bars = to_bar_frame(frame)
        async with self._lock:
            self.writes += 1
            current = self._series.get((node_id, interval))
            merged = bars if current is None else pl.concat([current, bars])
            self._series[(node_id, interval)] = merged.unique(
                subset=["ts"], keep="last", maintain_order=True
            ).sort("ts")
        return bars.height

    async def aclose(self) -> None:
        return None
