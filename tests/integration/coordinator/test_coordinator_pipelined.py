"""The pipelined Redis connection of the lease scripts (coordinator/pipelined.py), on real
Redis: concurrent calls go out together and each gets its own reply, an error reply fails
its own call only, a lost connection fails the calls in flight and the next call connects
again, a script cache flushed under the store is loaded again, and closing fails whatever
is still queued."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from seamless.coordinator import CoordinatorSettings
from seamless.coordinator.app import Service
from seamless.coordinator.metrics import CoordinatorMetrics
from seamless.coordinator.pipelined import PipelinedConnection
from seamless.coordinator.store import Finished, Granted, LeaseStore

from lab.servers import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def pipelined(redis: Redis) -> AsyncIterator[PipelinedConnection]:
    connection = PipelinedConnection(redis.connection_pool)
    yield connection
    await connection.aclose()


def _count_writes(pipelined: PipelinedConnection) -> list[int]:
    """How many EVAL commands each write to Redis carried (the connection's handshake
    commands are not counted)."""
    connection: Any = pipelined._connection
    send = connection.send_packed_command
    writes: list[int] = []

    async def counting(command: list[bytes], check_health: bool = True) -> None:
        evals = sum(bytes(chunk).count(b"$4\r\nEVAL\r\n") for chunk in command)
        if evals:
            writes.append(evals)
        await send(command, check_health=check_health)

    connection.send_packed_command = counting
    return writes


async def test_concurrent_calls_share_a_write_and_get_their_own_replies(
    pipelined: PipelinedConnection,
) -> None:
    writes = _count_writes(pipelined)
    replies = await asyncio.gather(
        *(pipelined.execute("EVAL", "return ARGV[1]", 0, f"call-{i}") for i in range(20))
    )
    assert replies == [f"call-{i}" for i in range(20)]
    assert writes == [20]


async def test_an_error_reply_fails_its_own_call_only(pipelined: PipelinedConnection) -> None:
    results = await asyncio.gather(
        pipelined.execute("EVAL", "return 'before'", 0),
        pipelined.execute("EVAL", "return redis.error_reply('ERR planted')", 0),
        pipelined.execute("EVALSHA", "0" * 40, 0),
        pipelined.execute("EVAL", "return 'after'", 0),
        return_exceptions=True,
    )
    assert results[0] == "before"
    assert isinstance(results[1], ResponseError) and "planted" in str(results[1])
    assert isinstance(results[2], NoScriptError)
    assert results[3] == "after"


async def _blocked_in_redis(redis: Redis, client_id: int) -> None:
    """Until the connection `client_id` is waiting in a blocking command."""
    while True:
        for client in await redis.client_list():
            if int(client["id"]) == client_id and client["cmd"] == "blpop":
                return
        await asyncio.sleep(0.01)


async def test_a_lost_connection_fails_the_calls_in_flight_and_the_next_call_reconnects(
    redis: Redis, pipelined: PipelinedConnection
) -> None:
    client_id = await pipelined.execute("CLIENT", "ID")
    # A BLPOP nobody answers holds its batch in flight: the PINGs sent with it, and those
    # queued behind it for the next batch.
    key = f"pipelined-{secrets.token_hex(4)}"
    in_flight = [asyncio.ensure_future(pipelined.execute("BLPOP", key, 0))]
    in_flight += [asyncio.ensure_future(pipelined.execute("PING")) for _ in range(3)]
    await _blocked_in_redis(redis, client_id)
    queued = [asyncio.ensure_future(pipelined.execute("PING")) for _ in range(3)]
    await redis.client_kill_filter(_id=client_id)
    results = await asyncio.gather(*in_flight, return_exceptions=True)
    assert all(isinstance(result, RedisConnectionError) for result in results), results
    # Never sent, so safe to send: they go out on a new connection.
    assert await asyncio.gather(*queued) == ["PONG", "PONG", "PONG"]
    assert await pipelined.execute("CLIENT", "ID") != client_id


async def test_a_reply_not_read_within_the_socket_timeout_fails_its_batch(
    redis_server: RedisServer, redis: Redis
) -> None:
    slow = Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=0.2)
    pipelined = PipelinedConnection(slow.connection_pool)
    try:
        key = f"pipelined-{secrets.token_hex(4)}"
        calls = [pipelined.execute("BLPOP", key, 0), pipelined.execute("PING")]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(result, RedisTimeoutError) for result in results), results
        assert await pipelined.execute("EVAL", "return 'again'", 0) == "again"
    finally:
        await pipelined.aclose()
        await slow.aclose()


async def test_closing_fails_queued_calls_and_refuses_new_ones(redis: Redis) -> None:
    pipelined = PipelinedConnection(redis.connection_pool)
    queued = asyncio.ensure_future(pipelined.execute("PING"))
    await pipelined.aclose()
    with pytest.raises(RedisConnectionError):
        await queued
    with pytest.raises(RedisConnectionError):
        await pipelined.execute("PING")


async def test_the_store_loads_flushed_scripts_again_on_the_pipelined_connection(
    redis: Redis, pipelined: PipelinedConnection
) -> None:
    store = LeaseStore(
        redis,
        prefix=f"pipelined-{secrets.token_hex(4)}:",
        max_attempts=3,
        pipelined=pipelined,
    )
    await store.load_scripts()
    await redis.script_flush()
    granted = await store.claim("node:60:0:60::", 30_000, holder="w", client="c")
    assert isinstance(granted, Granted)
    done = await store.complete("node:60:0:60::", granted.token, client="c", identity="c:")
    assert isinstance(done, Finished)


def _pipelines(dsn: str, **settings: Any) -> bool:
    """Whether the service opened on `dsn` runs the lease scripts on a pipelined connection."""
    svc = Service(
        CoordinatorSettings(
            redis_dsn=dsn, tokens={"c": SecretStr("t" * 24)}, prometheus_port=0, **settings
        ),
        CoordinatorMetrics(),
    )
    svc.open()
    return svc.pipelined is not None and svc.store.pipelined is svc.pipelined


def test_the_service_pipelines_on_one_redis_only() -> None:
    assert _pipelines("redis://127.0.0.1:1/0")
    assert not _pipelines("redis://127.0.0.1:1/0", redis_min_replicas=1)
    assert not _pipelines("redis+cluster://127.0.0.1:1")
    assert not _pipelines("redis+sentinel://127.0.0.1:1/primary")
