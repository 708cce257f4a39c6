"""The bar store's PG-wire connection pool against a real QuestDB: a connection dropped after
an error frees its slot for the next waiter, a broken connection is never handed out again,
and a caller finding every connection busy gets a clear error instead of waiting for ever."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from seamless.data.storage import QuestDBBarStore
from seamless.errors import StorageError, WriteFenced
from seamless.testing import synthetic_bars

from lab.servers import QuestDBServer

pytestmark = pytest.mark.integration


def _one_connection_store(server: QuestDBServer, pool_timeout_s: float) -> QuestDBBarStore:
    return QuestDBBarStore(
        server.pg_dsn,
        server.ilp_http_conf,
        table_prefix=f"pool_{secrets.token_hex(4)}_",
        pool_size=1,
        pool_timeout_s=pool_timeout_s,
    )


@pytest.fixture
async def one_connection_store(questdb_server: QuestDBServer) -> AsyncIterator[QuestDBBarStore]:
    store = _one_connection_store(questdb_server, pool_timeout_s=5.0)
    yield store
    await store.aclose()


async def test_a_dropped_connection_frees_its_slot_for_the_waiter(
    one_connection_store: QuestDBBarStore,
) -> None:
    store = one_connection_store
    holding = asyncio.Event()
    release = asyncio.Event()
    broken: list[psycopg.AsyncConnection[object]] = []

    async def holder_whose_connection_breaks() -> None:
        async with store._connection() as conn:
            broken.append(conn)
            holding.set()
            await release.wait()
            await conn.close()  # the socket is gone, as after a server-side reset
            await conn.execute("SELECT 1")

    async def waiter() -> object:
        async with store._connection() as conn:
            assert conn not in broken, "a broken connection was handed out again"
            cur = await conn.execute("SELECT 1")
            return await cur.fetchone()

    holder = asyncio.create_task(holder_whose_connection_breaks())
    await holding.wait()
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0.05)  # the waiter is queued for the only slot
    assert not waiting.done()
    release.set()
    with pytest.raises(StorageError, match="QuestDB query failed"):
        await holder
    # before the fix the slot leaked with the connection and the waiter waited for ever;
    # now it must be served well inside pool_timeout_s
    async with asyncio.timeout(store.pool_timeout_s / 2):
        assert await waiting == (1,)


async def test_every_connection_busy_is_a_clear_error(questdb_server: QuestDBServer) -> None:
    store = _one_connection_store(questdb_server, pool_timeout_s=0.2)
    try:
        async with store._connection():
            with pytest.raises(StorageError, match=r"pool_timeout_s=0\.2.*pool_size=1"):
                async with store._connection():
                    raise AssertionError("the only connection is in use")
        async with store._connection() as conn:  # and the slot is usable again after
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await store.aclose()


async def test_a_connection_abandoned_mid_query_is_not_reused(
    one_connection_store: QuestDBBarStore,
) -> None:
    store = one_connection_store
    seen: list[psycopg.AsyncConnection[object]] = []

    async def read_then_cancelled() -> None:
        async with store._connection() as conn:
            seen.append(conn)
            # left mid-transaction, as a query cut off by a cancel can leave it
            await conn.set_autocommit(False)
            await conn.execute("SELECT 1")
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await read_then_cancelled()
    async with store._connection() as conn:
        assert conn is not seen[0]
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    assert seen[0].closed


async def test_a_write_does_not_wait_for_a_pooled_connection(questdb_server: QuestDBServer) -> None:
    """The committer checks fences and polls the WAL apply on a connection of its own: a
    write goes through while reads hold every pooled connection (before, it queued behind
    them and here timed out after pool_timeout_s), and the fence still refuses an older
    token."""
    store = _one_connection_store(questdb_server, pool_timeout_s=0.5)
    iv = 60
    bars = synthetic_bars(0, iv * 29, node_id="n", interval=iv, seed=1)
    try:
        await store.ensure_table()
        async with store._connection():  # a long read holds the only pooled connection
            assert await store.write("n", iv, bars, token=7) == 30
            with pytest.raises(WriteFenced):
                await store.write("n", iv, bars, token=6)
        assert (await store.read("n", iv, 0, iv * 29)).equals(bars)
    finally:
        await store.aclose()


async def test_the_next_batch_is_sent_while_the_last_one_is_applied(
    questdb_server: QuestDBServer,
) -> None:
    """Writes arriving while a batch's WAL apply is awaited go out at once in the next
    batch (before, they waited for that apply); every writer still returns only once its
    rows are applied and readable."""
    store = _one_connection_store(questdb_server, pool_timeout_s=5.0)
    iv = 60
    first = synthetic_bars(0, iv * 29, node_id="a", interval=iv, seed=1)
    second = synthetic_bars(0, iv * 29, node_id="b", interval=iv, seed=2)
    posts: list[list[str]] = []
    applying = asyncio.Event()
    release = asyncio.Event()
    post_ilp, wait_applied = store._post_ilp, store._wait_applied

    async def counting_post(writes: list[Any]) -> None:
        posts.append([w.node_id for w in writes])
        await post_ilp(writes)

    async def held_wait(conn: Any = None) -> None:
        applying.set()
        await release.wait()
        await wait_applied(conn)

    store._post_ilp = counting_post  # type: ignore[method-assign]
    store._wait_applied = held_wait  # type: ignore[method-assign]
    try:
        await store.ensure_table()
        writing_a = asyncio.create_task(store.write("a", iv, first, token=1))
        await applying.wait()  # batch [a] sent, its apply awaited
        writing_b = asyncio.create_task(store.write("b", iv, second, token=1))
        async with asyncio.timeout(5):
            while len(posts) < 2:
                await asyncio.sleep(0.01)
        assert posts == [["a"], ["b"]] and not writing_a.done() and not writing_b.done()
        release.set()
        assert await writing_a == 30 and await writing_b == 30
        assert (await store.read("a", iv, 0, iv * 29)).equals(first)
        assert (await store.read("b", iv, 0, iv * 29)).equals(second)
    finally:
        release.set()
        await store.aclose()
