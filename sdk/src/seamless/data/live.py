"""Live feeds: the bars newer than anything the fetcher can backfill.

A `LiveFeed` is an async iterator of closed bars from a given timestamp on. The provider
serves the tail of a window beyond the last closed bar from it, waiting at most
``max_wait_live_ms``; whatever arrived by then is served and the rest is reported missing
(QMTL declared this stage and never wired it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from seamless.data.bars import BAR_SCHEMA, empty_bars


@dataclass(frozen=True)
class Bar:
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class LiveFeed(Protocol):
    def subscribe(self, node_id: str, interval: int, since: int) -> AsyncIterator[Bar]:
        """Closed bars with ``ts >= since`` in ts order, as they close."""
        ...


@dataclass
class LiveCollection:
    frame: pl.DataFrame
    waited_ms: float
    timed_out: bool


async def collect(
    feed: LiveFeed,
    *,
    node_id: str,
    interval: int,
    start: int,
    end: int,
    timeout_s: float | None,
) -> LiveCollection:
    """Bars of ``[start, end]`` from `feed`, until the bar at `end` arrives or `timeout_s`
    runs out; on time-out the bars received so far are kept."""
    bars: list[Bar] = []
    began = time.monotonic()

    async def consume() -> None:
        iterator = feed.subscribe(node_id, interval, start)
        try:
            async for bar in iterator:
                if bar.ts > end:
                    return
                if bar.ts >= start:
                    bars.append(bar)
                if bar.ts >= end:
                    return
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()

    timed_out = False
    try:
        if timeout_s is None:
            await consume()
        else:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await consume()
    except TimeoutError:
        timed_out = True
    waited = (time.monotonic() - began) * 1000
    if not bars:
        return LiveCollection(empty_bars(), waited, timed_out)
    frame = pl.DataFrame(
        {name: [getattr(bar, name) for bar in bars] for name in BAR_SCHEMA}, schema=BAR_SCHEMA
    )
    return LiveCollection(frame, waited, timed_out)
