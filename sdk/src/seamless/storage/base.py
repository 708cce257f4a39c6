"""The bar-store interface shared by every backend."""

from __future__ import annotations

from typing import Protocol

import polars as pl

from seamless.fetcher import BAR_SCHEMA


class BarStore(Protocol):
    async def read(self, node_id: str, interval: int, start: int, end: int) -> pl.DataFrame:
        """Stored bars with ``start <= ts <= end``, sorted by ts, in `BAR_SCHEMA`."""
        ...

    async def write(self, node_id: str, interval: int, frame: pl.DataFrame) -> int:
        """Store `frame` (an idempotent upsert on ts); the rows are visible to `read` when
        this returns. Returns the number of rows sent."""
        ...

    async def aclose(self) -> None: ...


def to_bar_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` in exactly `BAR_SCHEMA`'s columns and dtypes (missing columns as nulls)."""
    columns = [
        pl.col(name).cast(dtype, strict=False)
        if name in frame.columns
        else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in BAR_SCHEMA.items()
    ]
    return frame.select(columns)
