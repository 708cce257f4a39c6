"""The provider's result cache: entries expire after the TTL, the oldest-used go first when
full, and a zero bound keeps nothing."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from seamless.data.provider.cache import CacheKey, ResultCache
from seamless.data.provider.models import FetchResult


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(n: int) -> CacheKey:
    return ("node", 60, n * 60, n * 60 + 600, "", "")


def result() -> FetchResult:
    meta: Any = object()  # the cache never looks inside a result
    return FetchResult(pl.DataFrame({"ts": [0]}), meta)


def test_an_entry_is_served_until_its_ttl_runs_out() -> None:
    clock = Clock()
    cache = ResultCache(ttl_s=60, max_entries=8, timer=clock)
    stored = result()
    cache.put(key(1), stored)
    clock.now += 59.9
    assert cache.get(key(1)) is stored
    clock.now += 0.2
    assert cache.get(key(1)) is None
    assert len(cache) == 0


def test_a_full_cache_drops_the_least_recently_used() -> None:
    cache = ResultCache(ttl_s=60, max_entries=2, timer=Clock())
    first, second, third = result(), result(), result()
    cache.put(key(1), first)
    cache.put(key(2), second)
    assert cache.get(key(1)) is first  # key 2 is now the least recently used
    cache.put(key(3), third)
    assert cache.get(key(2)) is None
    assert cache.get(key(1)) is first
    assert cache.get(key(3)) is third


@pytest.mark.parametrize(("ttl_s", "max_entries"), [(0, 8), (60, 0), (-1, 8)])
def test_a_zero_bound_keeps_nothing(ttl_s: float, max_entries: int) -> None:
    cache = ResultCache(ttl_s=ttl_s, max_entries=max_entries)
    cache.put(key(1), result())
    assert cache.get(key(1)) is None
    assert len(cache) == 0


def test_clear_empties_it() -> None:
    cache = ResultCache(ttl_s=60, max_entries=8)
    cache.put(key(1), result())
    cache.clear()
    assert cache.get(key(1)) is None
