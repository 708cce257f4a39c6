"""The provider's result cache: complete, undowngraded answers kept for ``ttl_s`` seconds,
at most ``max_entries`` of them (least recently used first out). A cache with either bound
at zero keeps nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

from seamless.data.provider.models import FetchResult

CacheKey = tuple[str, int, int, int, str, str]  # node_id, interval, start, end, world, as_of


class ResultCache:
    def __init__(
        self, ttl_s: float, max_entries: int, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: TTLCache[CacheKey, FetchResult] | None = (
            TTLCache(maxsize=max_entries, ttl=ttl_s, timer=timer)
            if max_entries > 0 and ttl_s > 0
            else None
        )

    def get(self, key: CacheKey) -> FetchResult | None:
        if self._entries is None:
            return None
        result: FetchResult | None = self._entries.get(key)
        return result

    def put(self, key: CacheKey, result: FetchResult) -> None:
        if self._entries is not None:
            self._entries[key] = result

    def clear(self) -> None:
        if self._entries is not None:
            self._entries.clear()

    def __len__(self) -> int:
        return 0 if self._entries is None else len(self._entries)
