"""No module is searched for on the request path: httpcore imports sniffio inside every
connection-pool operation (`current_async_library`), and a module that is not installed is
looked up on sys.path again on each call (6,664 failed lookups in 1,500 fetches of the load
gate, ~10 % of the SDK process's CPU). sniffio is a declared dependency of the SDK."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest
from httpcore._synchronization import current_async_library

pytestmark = pytest.mark.unit


class _Recorder(MetaPathFinder):
    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        self.looked_up.append(fullname)
        return None  # let the real finders answer


def test_the_http_pool_path_imports_nothing_at_run_time() -> None:
    async def pool_operations() -> None:
        for _ in range(100):
            assert current_async_library() == "asyncio"

    asyncio.run(pool_operations())  # the first calls may import what they need
    recorder = _Recorder()
    sys.meta_path.insert(0, recorder)
    try:
        asyncio.run(pool_operations())
    finally:
        sys.meta_path.remove(recorder)
    assert recorder.looked_up == [], f"looked up at run time: {sorted(set(recorder.looked_up))}"
