"""The bar frame every stage of the data path speaks: epoch-second `ts` and OHLCV floats,
in this column order. Fetchers, live feeds and stores produce it; conformance casts
anything else to it."""

from __future__ import annotations

import polars as pl

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
BAR_SCHEMA: dict[str, type[pl.DataType]] = {
    "ts": pl.Int64,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}


def empty_bars() -> pl.DataFrame:
    return pl.DataFrame(schema=BAR_SCHEMA)
