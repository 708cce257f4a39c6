"""The coordinator's Redis pool across Redis restarts, through a real coordinator process.

A restart closes every pooled connection. The pool must notice a closed connection when it
hands it out and open a new one, so the very first lease request after Redis is back
succeeds, and so does a burst that takes every pooled connection at once; while Redis is
really down a request answers 503 straight away (no hidden retry loop).

redis-py 8 broke this: with RESP3 it switches "maintenance notifications" on by default,
and while they are on its pool skips the closed-connection check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from lab.coordinator_process import CoordinatorServer
from lab.servers import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RESTARTS = 20
BURST = 16  # more concurrent requests than one connection: the pool holds several
LEASE_MS = 5_000
# The coordinator's connect timeout to Redis (Coordinator.open): a refused connection must be
# answered well within it, not after retries.
REDIS_CONNECT_TIMEOUT_S = 2.0


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own: it is restarted and stopped."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def coordinator(own_redis: RedisServer) -> Iterator[CoordinatorServer]:
    with CoordinatorServer(own_redis.url) as server:
        yield server


def _wait_for_redis(server: RedisServer, timeout: float) -> None:
    """Until Redis itself answers (not the coordinator: its health check must not be what
    repairs the pool before the request under test)."""
    deadline = time.monotonic() + timeout
    while not server.ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"Redis not back within {timeout} s:\n{server.log_tail()}")
        time.sleep(0.02)


async def _claim(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/v1/leases/claim", json={"key": key, "lease_ms": LEASE_MS})


async def test_first_claim_after_each_of_twenty_redis_restarts_succeeds(
    own_redis: RedisServer, coordinator: CoordinatorServer
) -> None:
    async with httpx.AsyncClient(
        base_url=coordinator.url, headers=coordinator.auth_headers(), timeout=10
    ) as client:
        for round_ in range(RESTARTS):
            burst = await asyncio.gather(
                *(_claim(client, f"before-{round_}-{i}:60:0:60::") for i in range(BURST))
            )
            assert [r.status_code for r in burst] == [200] * BURST, burst[0].text

            await asyncio.to_thread(own_redis.restart)
            await asyncio.to_thread(_wait_for_redis, own_redis, own_redis.startup_timeout)

            first = await _claim(client, f"first-{round_}:60:0:60::")
            assert first.status_code == 200, f"restart {round_ + 1}: {first.text}"
            # Every other pooled connection died too: a burst takes all of them.
            after = await asyncio.gather(
                *(_claim(client, f"after-{round_}-{i}:60:0:60::") for i in range(BURST))
            )
            failed = [r.text for r in after if r.status_code != 200]
            assert not failed, f"restart {round_ + 1}: {len(failed)} of {BURST}: {failed[0]}"


async def test_claim_while_redis_is_down_answers_503_at_once(
    own_redis: RedisServer, coordinator: CoordinatorServer
) -> None:
    async with httpx.AsyncClient(
        base_url=coordinator.url, headers=coordinator.auth_headers(), timeout=10
    ) as client:
        assert (await _claim(client, "up:60:0:60::")).status_code == 200
        own_redis.stop()
        started = time.monotonic()
        down = await _claim(client, "down:60:0:60::")
        elapsed = time.monotonic() - started
        assert down.status_code == 503, down.text
        assert down.json()["error"] == "unavailable"
        assert elapsed < REDIS_CONNECT_TIMEOUT_S, f"503 took {elapsed:.2f} s"

        own_redis.start()
        # Back on the same port: the next claim succeeds with no warm-up request.
        back = await _claim(client, "back:60:0:60::")
        assert back.status_code == 200, back.text
