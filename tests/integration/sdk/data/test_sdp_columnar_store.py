"""The QuestDB store's columnar read (/exp?fmt=parquet) against a real QuestDB: the same
bars as the PostgreSQL-wire path, the fallback when the export is unreachable, bounded
bodies and node ids checked before they reach the SQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from seamless.data.storage import QuestDBBarStore
from seamless.errors import StorageError
from seamless.testing import synthetic_bars

from lab.servers import QuestDBServer, free_port

pytestmark = pytest.mark.integration

IV = 60


@pytest.fixture
async def stores(
    questdb_server: QuestDBServer,
) -> AsyncIterator[tuple[QuestDBBarStore, QuestDBBarStore]]:
    prefix = f"seamless_c{secrets.token_hex(4)}_"
    columnar = QuestDBBarStore(
        questdb_server.pg_dsn,
        questdb_server.ilp_http_conf,
        table_prefix=prefix,
        http_url=questdb_server.http_url,
        columnar_min_bars=1,
    )
    pg = QuestDBBarStore(questdb_server.pg_dsn, questdb_server.ilp_http_conf, table_prefix=prefix)
    yield columnar, pg
    await columnar.aclose()
    await pg.aclose()


async def test_columnar_and_pg_reads_give_the_same_frames(
    stores: tuple[QuestDBBarStore, QuestDBBarStore],
) -> None:
    columnar, pg = stores
    bars = synthetic_bars(0, IV * 2999, node_id="n", interval=IV, seed=5)
    await columnar.write("n", IV, bars)
    await columnar.write("m", IV, bars.slice(0, 10))
    for start, end in [
        (0, IV * 2999),
        (IV * 7, IV * 7),
        (IV * 100, IV * 250),
        (IV * 5000, IV * 6000),
    ]:
        got = await columnar.read("n", IV, start, end)
        assert columnar.columnar_active, "the export answered; no fallback"
        assert got.schema == bars.schema
        assert got.equals(await pg.read("n", IV, start, end))
        assert got.equals(bars.filter((bars["ts"] >= start) & (bars["ts"] <= end)))
    assert (await columnar.read("m", IV, 0, IV * 2999)).height == 10
    assert (await columnar.read("n", 300, 0, IV * 2999)).height == 0


async def test_an_unreachable_export_falls_back_to_the_pg_wire(
    questdb_server: QuestDBServer,
) -> None:
    store = QuestDBBarStore(
        questdb_server.pg_dsn,
        questdb_server.ilp_http_conf,
        table_prefix=f"seamless_c{secrets.token_hex(4)}_",
        http_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        http_timeout_s=2.0,
        columnar_min_bars=1,
    )
    try:
        bars = synthetic_bars(0, IV * 99, node_id="n", interval=IV)
        await store.write("n", IV, bars)
        assert store.columnar_active
        assert (await store.read("n", IV, 0, IV * 99)).equals(bars)
        assert not store.columnar_active, "the failed export is skipped for a while"
        assert (await store.read("n", IV, 0, IV * 99)).equals(bars)
    finally:
        await store.aclose()


async def test_a_read_body_is_bounded_and_node_ids_never_reach_sql_unchecked(
    questdb_server: QuestDBServer,
) -> None:
    store = QuestDBBarStore(
        questdb_server.pg_dsn,
        questdb_server.ilp_http_conf,
        table_prefix=f"seamless_c{secrets.token_hex(4)}_",
        http_url=questdb_server.http_url,
        columnar_min_bars=1,
        max_read_bytes=4096,
    )
    try:
        await store.write("n", IV, synthetic_bars(0, IV * 999, node_id="n", interval=IV))
        with pytest.raises(StorageError, match="max_read_bytes=4096"):
            await store.read("n", IV, 0, IV * 999)
        with pytest.raises(StorageError, match="node_id"):
            await store.read("n' OR '1'='1", IV, 0, IV * 999)
    finally:
        await store.aclose()
