"""Shared pieces of the coordinator's integration tests: the in-process app handle, the
bearer tokens, and waiting on conditions with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis, RedisCluster
from seamless.coordinator import CoordinatorSettings
from seamless.coordinator.metrics import CoordinatorMetrics
from seamless.coordinator.store import KeySpace

TOKEN = "integration-token-" + secrets.token_hex(8)
OTHER_TOKEN = "other-client-token-" + secrets.token_hex(8)
# The in-process app's clients: TOKEN is worker-a's (the default), OTHER_TOKEN worker-b's,
# OPERATOR_TOKEN the client `ops` with the operator role alone.
OPERATOR_TOKEN = "operator-token-" + secrets.token_hex(8)
AS_OTHER_CLIENT = {"Authorization": f"Bearer {OTHER_TOKEN}"}
AS_OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


# In a module's pytestmark: each of its tests on an in-process app (`make_app`, `live`) runs
# on every Redis topology (conftest.py's pytest_generate_tests).
ALL_REDIS_TOPOLOGIES = pytest.mark.all_redis_topologies
REDIS_TOPOLOGIES = ("single", "cluster", "sentinel")


@dataclass
class LiveApp:
    client: httpx.AsyncClient
    metrics: CoordinatorMetrics
    settings: CoordinatorSettings
    redis: Redis | RedisCluster
    app: Any

    @property
    def keys(self) -> KeySpace:
        """The Redis key names of this app's lease state."""
        keys: KeySpace = self.app.state.service.store.keys
        return keys

    def held_index(self, key: str) -> str:
        return self.keys.indexes(self.keys.partition(key))[0]

    def expired_index(self, key: str) -> str:
        return self.keys.indexes(self.keys.partition(key))[1]

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


AppFactory = Callable[..., AbstractAsyncContextManager[LiveApp]]


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
