"""Where backfilled bars come from: the `DataFetcher` interface. A fetcher raises
`seamless.errors.FetchFailed` (or any exception) for an upstream failure; the backfill
retries it. Synthetic fetchers for tests and the lab are in `seamless.testing`."""

from __future__ import annotations

from typing import Protocol

import polars as pl


class DataFetcher(Protocol):
    async def fetch(self, start: int, end: int, *, node_id: str, interval: int) -> pl.DataFrame:
        """Bars with ``start <= ts <= end`` (inclusive), epoch-second ``ts``."""
        ...
