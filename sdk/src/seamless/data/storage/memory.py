"""An in-process bar store for dev profiles and unit tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import polars as pl

from seamless.data.bars import empty_bars
from seamless.data.storage.base import TOKEN_COLUMN, latest_per_ts, to_bar_frame
from seamless.errors import WriteFenced


@dataclass
class MemoryBarStore:
    """Bars per ``(node_id, interval)``; writes upsert on (ts, lease token) and reads serve
    the highest token per ts, like the QuestDB table does."""

    _series: dict[tuple[str, int], pl.DataFrame] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reads: int = 0
    writes: int = 0

    async def read(self, node_id: str, interval: int, start: int, end: int) -> pl.DataFrame:
        self.reads += 1
        series = self._series.get((node_id, interval))
        if series is None:
            return empty_bars()
        return latest_per_ts(series.filter(pl.col("ts").is_between(start, end)))

    async def write(
        self, node_id: str, interval: int, frame: pl.DataFrame, *, token: int | None = None
    ) -> int:
        bars = to_bar_frame(frame).with_columns(pl.lit(token, dtype=pl.Int64).alias(TOKEN_COLUMN))
        async with self._lock:
            current = self._series.get((node_id, interval))
            if token is not None and current is not None and bars.height:
                span = current.filter(pl.col("ts").is_between(bars["ts"].min(), bars["ts"].max()))
                newest = span[TOKEN_COLUMN].max()
                if newest is not None and int(newest) > token:  # type: ignore[arg-type]
                    raise WriteFenced(node_id, interval, token, int(newest))  # type: ignore[arg-type]
            self.writes += 1
            merged = bars if current is None else pl.concat([current, bars])
            self._series[(node_id, interval)] = merged.unique(
                subset=["ts", TOKEN_COLUMN], keep="last", maintain_order=True
            ).sort(["ts", TOKEN_COLUMN], nulls_last=False, maintain_order=True)
        return bars.height

    async def aclose(self) -> None:
        return None
