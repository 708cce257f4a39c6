"""Deterministic stand-ins for the data path's upstreams, for tests, chaos runs, the load
gate and the lab: a synthetic fetcher and a synthetic live feed.

`SyntheticFetcher` produces the same OHLCV values for a bar whichever shard or process asks
for it (values are a hash of seed, node id and bar index, not a running random walk), so two
workers backfilling neighbouring shards agree byte for byte. Latency, failures, gaps and
schema faults are configurable and deterministic too. Every call is recorded per shard in a
`CallLog` (in memory, or a file shared by several processes) so tests can prove that no
shard was fetched twice. `SyntheticLiveFeed` emits the same bars as a clock closes them.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from seamless.data.bars import BAR_SCHEMA, empty_bars
from seamless.data.coverage import Range
from seamless.data.live import Bar
from seamless.errors import FetchFailed

# Schema faults the synthetic fetcher can inject, each caught by a conformance flag.
SCHEMA_FAULTS = frozenset(
    {
        "missing_column",  # drops `volume`                      -> missing_column
        "string_prices",  # `close` as text                      -> dtype_cast
        "duplicate_ts",  # repeats the first bars                 -> duplicate_ts
        "non_finite",  # NaN / inf in `high`                       -> non_finite
        "off_grid_ts",  # shifts one bar off the interval grid      -> invalid_timestamp
        "datetime_ts",  # `ts` as a timezone-aware datetime          -> ts_cast, tz normalized
        "unsorted",  # bars in reverse order (sorted silently)
    }
)


class CallLog(Protocol):
    def record(self, node_id: str, interval: int, start: int, end: int) -> None: ...

    def counts(self) -> Counter[tuple[str, int, int, int]]: ...


@dataclass
class MemoryCallLog:
    calls: Counter[tuple[str, int, int, int]] = field(default_factory=Counter)

    def record(self, node_id: str, interval: int, start: int, end: int) -> None:
        self.calls[(node_id, interval, start, end)] += 1

    def counts(self) -> Counter[tuple[str, int, int, int]]:
        return Counter(self.calls)


@dataclass
class FileCallLog:
    """One line per call, appended under an exclusive lock, so several processes can share
    the file and a test can count calls across all of them."""

    path: Path

    def record(self, node_id: str, interval: int, start: int, end: int) -> None:
        line = f"{node_id}\t{interval}\t{start}\t{end}\t{os.getpid()}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)

    def counts(self) -> Counter[tuple[str, int, int, int]]:
        out: Counter[tuple[str, int, int, int]] = Counter()
        if not self.path.exists():
            return out
        for line in self.path.read_text().splitlines():
            node_id, interval, start, end, _pid = line.split("\t")
            out[(node_id, int(interval), int(start), int(end))] += 1
        return out


def _mix(values: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of `values` salted: a fast, stateless hash to uniform [0, 1)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def synthetic_bars(
    start: int, end: int, *, node_id: str, interval: int, seed: int = 0
) -> pl.DataFrame:
    """Deterministic OHLCV bars for every grid point in ``[start, end]``."""
    first = -(-start // interval)
    last = end // interval
    if last < first:
        return empty_bars()
    index = np.arange(first, last + 1, dtype=np.int64)
    salt = (seed * 1_000_003) ^ zlib.crc32(node_id.encode())
    base = 100.0 + 10.0 * np.sin(index / 97.0) + 3.0 * np.sin(index / 13.0)
    open_ = base + (_mix(index, salt) - 0.5)
    close = base + (_mix(index, salt + 1) - 0.5)
    high = np.maximum(open_, close) + _mix(index, salt + 2)
    low = np.minimum(open_, close) - _mix(index, salt + 3)
    volume = np.round(1000.0 * _mix(index, salt + 4) + 1.0, 3)
    return pl.DataFrame(
        {
            "ts": index * interval,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        },
        schema=BAR_SCHEMA,
    )


@dataclass
class SyntheticFetcher:
    """Seeded synthetic OHLCV source.

    - ``latency_ms``: every call sleeps this long (asyncio, so calls overlap);
    - ``error_rate``: probability that an attempt raises `FetchFailed`; decided by a hash of
      (seed, shard, attempt number) so a run is reproducible and retries can succeed;
    - ``gaps``: ranges the source simply has no bars for (a market closure);
    - ``schema_faults``: names from `SCHEMA_FAULTS` applied to every returned frame;
    - ``horizon``: a clock (epoch seconds); bars not yet closed at that time are not
      returned, which is what makes the live feed necessary for the tail.
    """

    seed: int = 0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    gaps: list[Range] = field(default_factory=list)
    schema_faults: frozenset[str] = frozenset()
    horizon: Callable[[], float] | None = None
    call_log: CallLog = field(default_factory=MemoryCallLog)
    _attempts: Counter[tuple[str, int, int, int]] = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.schema_faults) - SCHEMA_FAULTS
        if unknown:
            raise ValueError(
                f"unknown schema_faults {sorted(unknown)}: expected names from "
                f"{sorted(SCHEMA_FAULTS)}"
            )
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate={self.error_rate}: expected 0.0 <= error_rate <= 1.0")

    async def fetch(self, start: int, end: int, *, node_id: str, interval: int) -> pl.DataFrame:
        shard = (node_id, interval, start, end)
        self.call_log.record(*shard)
        attempt = self._attempts[shard]
        self._attempts[shard] += 1
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000.0)
        if self.error_rate > 0:
            roll = random.Random(f"{self.seed}|{node_id}|{interval}|{start}|{end}|{attempt}")
            if roll.random() < self.error_rate:
                raise FetchFailed(f"synthetic upstream error on {shard} attempt {attempt}")
        if self.horizon is not None:
            last_closed = (int(self.horizon()) // interval - 1) * interval
            end = min(end, last_closed)
        frame = synthetic_bars(start, end, node_id=node_id, interval=interval, seed=self.seed)
        frame = _drop_gaps(frame, self.gaps)
        return _apply_faults(frame, self.schema_faults, interval)

    def calls(self) -> Counter[tuple[str, int, int, int]]:
        return self.call_log.counts()


def _drop_gaps(frame: pl.DataFrame, gaps: Iterable[Range]) -> pl.DataFrame:
    for gap in gaps:
        frame = frame.filter(~pl.col("ts").is_between(gap.start, gap.end))
    return frame


def _apply_faults(frame: pl.DataFrame, faults: frozenset[str], interval: int) -> pl.DataFrame:
    if not faults or frame.height == 0:
        return frame
    if "duplicate_ts" in faults:
        frame = pl.concat([frame, frame.head(min(3, frame.height))])
    if "non_finite" in faults:
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) % 7 == 0)
            .then(float("nan"))
            .when(pl.int_range(pl.len()) % 11 == 0)
            .then(float("inf"))
            .otherwise(pl.col("high"))
            .alias("high")
        )
    if "off_grid_ts" in faults and interval > 1:
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.col("ts") + 1)
            .otherwise(pl.col("ts"))
            .alias("ts")
        )
    if "string_prices" in faults:
        frame = frame.with_columns(pl.col("close").cast(pl.String))
    if "missing_column" in faults:
        frame = frame.drop("volume")
    if "datetime_ts" in faults:
        frame = frame.with_columns(
            pl.from_epoch(pl.col("ts"), time_unit="s")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone("Asia/Seoul")
            .alias("ts")
        )
    if "unsorted" in faults:
        frame = frame.reverse()
    return frame


@dataclass
class SyntheticLiveFeed:
    """Emits the synthetic fetcher's bars as a clock closes them.

    ``clock`` gives epoch seconds (defaults to wall time); a bar ``t`` is closed once
    ``clock() >= t + interval``. ``poll_s`` is how often an open bar is re-checked. Tests
    drive ``clock`` to make bars close on demand.
    """

    seed: int = 0
    clock: Callable[[], float] = time.time
    poll_s: float = 0.01

    async def _bars(self, node_id: str, interval: int, since: int) -> AsyncIterator[Bar]:
        next_ts = -(-since // interval) * interval
        while True:
            if self.clock() >= next_ts + interval:
                row = synthetic_bars(
                    next_ts, next_ts, node_id=node_id, interval=interval, seed=self.seed
                ).row(0, named=True)
                yield Bar(**row)
                next_ts += interval
            else:
                await asyncio.sleep(self.poll_s)

    def subscribe(self, node_id: str, interval: int, since: int) -> AsyncIterator[Bar]:
        return self._bars(node_id, interval, since)
