"""Fencing reaches storage, against a real QuestDB: a write carries its lease token, a
write older than the span's newest token is refused, and a stale write that lands anyway
(paused after the check) is superseded on read by the newer holder's bars."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import polars as pl
import psycopg
import pytest
from seamless.data.storage import MemoryBarStore, QuestDBBarStore
from seamless.data.storage.base import BarStore
from seamless.data.storage.questdb import _Write
from seamless.errors import WriteFenced
from seamless.testing import synthetic_bars

from lab.servers import QuestDBServer

pytestmark = pytest.mark.integration

IV = 60
OLD = synthetic_bars(0, IV * 29, node_id="n", interval=IV, seed=1)
NEW = synthetic_bars(0, IV * 29, node_id="n", interval=IV, seed=2)


def _prefix() -> str:
    return f"seamless_f{secrets.token_hex(4)}_"


@pytest.fixture(params=["questdb", "memory"])
async def store(
    request: pytest.FixtureRequest, questdb_server: QuestDBServer
) -> AsyncIterator[BarStore]:
    s: BarStore
    if request.param == "questdb":
        s = QuestDBBarStore(
            questdb_server.pg_dsn,
            questdb_server.ilp_http_conf,
            table_prefix=_prefix(),
            http_url=questdb_server.http_url,
        )
    else:
        s = MemoryBarStore()
    yield s
    await s.aclose()


async def test_an_older_token_is_refused_and_never_replaces_newer_bars(store: BarStore) -> None:
    assert not OLD.equals(NEW)
    await store.write("n", IV, OLD, token=100)  # the first holder
    await store.write("n", IV, NEW, token=200)  # the holder after a takeover
    assert (await store.read("n", IV, 0, IV * 29)).equals(NEW)
    with pytest.raises(WriteFenced) as err:
        await store.write("n", IV, OLD.slice(3, 5), token=100)  # the stale holder, late
    assert err.value.token == 100 and err.value.newer == 200
    assert (await store.read("n", IV, 0, IV * 29)).equals(NEW)
    # the same holder rewriting (a retried write) and bars outside the span are fine
    assert await store.write("n", IV, NEW, token=200) == 30
    later = synthetic_bars(IV * 30, IV * 59, node_id="n", interval=IV, seed=3)
    assert await store.write("n", IV, later, token=150) == 30
    assert (await store.read("n", IV, 0, IV * 59)).equals(pl.concat([NEW, later]))


async def test_a_stale_write_that_slips_past_the_check_is_superseded_on_read(
    questdb_server: QuestDBServer,
) -> None:
    store = QuestDBBarStore(
        questdb_server.pg_dsn,
        questdb_server.ilp_http_conf,
        table_prefix=_prefix(),
        http_url=questdb_server.http_url,
    )
    try:
        await store.write("n", IV, NEW, token=200)
        # what a writer paused between its fence check and its send puts on the wire
        await store._post_ilp([_Write("n", IV, OLD, 100)])
        await store._wait_applied()
        assert (await store.read("n", IV, 0, IV * 29)).equals(NEW)
        pg = QuestDBBarStore(
            questdb_server.pg_dsn, questdb_server.ilp_http_conf, table_prefix=store.table_prefix
        )
        assert (await pg.read("n", IV, 0, IV * 29)).equals(NEW), "the PG-wire fallback too"
        await pg.aclose()
    finally:
        await store.aclose()


async def test_a_table_made_before_fencing_gets_the_token_column(
    questdb_server: QuestDBServer,
) -> None:
    prefix = _prefix()
    with psycopg.connect(questdb_server.pg_dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {prefix}bars (node_id SYMBOL, bar_interval LONG, ts TIMESTAMP, "
            "open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE) "
            "TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, node_id, bar_interval)"
        )
    store = QuestDBBarStore(
        questdb_server.pg_dsn,
        questdb_server.ilp_http_conf,
        table_prefix=prefix,
        http_url=questdb_server.http_url,
    )
    try:
        await store.write("n", IV, OLD)  # untokened, as before
        await store.write("n", IV, NEW, token=5)
        assert (await store.read("n", IV, 0, IV * 29)).equals(NEW)
        again = QuestDBBarStore(
            questdb_server.pg_dsn, questdb_server.ilp_http_conf, table_prefix=prefix
        )
        await again.ensure_table()  # already migrated: no ALTER, no error
        await again.aclose()
    finally:
        await store.aclose()
