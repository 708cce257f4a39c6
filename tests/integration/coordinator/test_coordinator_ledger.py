"""The QuestDB ledger: completed and failed shards land in real QuestDB; QuestDB refusing
connections, or accepting them and never answering, does not slow leases down, and a full
buffer counts what it drops."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from coordinator_testkit import AppFactory, LiveApp, wait_until

from lab.servers import LOOPBACK, QuestDBServer, free_port

pytestmark = pytest.mark.integration


async def claim_and_finish(live: LiveApp, key: str, *, fail: bool = False) -> int:
    claim = await live.client.post("/v1/leases/claim", json={"key": key, "lease_ms": 30_000})
    assert claim.status_code == 200, claim.text
    token: int = claim.json()["lease"]["token"]
    if fail:
        body = {"key": key, "token": token, "reason": "exchange 502"}
        response = await live.client.post("/v1/leases/fail", json=body)
    else:
        response = await live.client.post("/v1/leases/complete", json={"key": key, "token": token})
    assert response.status_code == 200, response.text
    return token


def ledger_rows(dsn: str, table: str) -> list[tuple[object, ...]]:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            return conn.execute(
                f"SELECT event, lease_key, node_id, bar_interval, token, holder, reason "
                f"FROM {table} ORDER BY ts"
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return []
    except psycopg.Error as exc:  # the WAL table may not be visible yet
        if "does not exist" in str(exc):
            return []
        raise


async def test_completed_and_failed_shards_land_in_questdb(
    make_app: AppFactory, questdb_server: QuestDBServer
) -> None:
    prefix = f"it_{secrets.token_hex(3)}_"
    table = f"{prefix}backfill_ledger"
    async with make_app(questdb_dsn=questdb_server.pg_dsn, ledger_prefix=prefix) as live:
        done = await claim_and_finish(live, "ledger-node:60:0:59::")
        failed = await claim_and_finish(live, "ledger-node:60:60:119::", fail=True)

        async def landed() -> bool:
            rows = await asyncio.to_thread(ledger_rows, questdb_server.pg_dsn, table)
            # The writer counts a batch once its INSERT has returned, which can be after
            # another connection already sees the rows.
            return len(rows) == 2 and live.metric("seamless_coordinator_ledger_written_total") == 2

        await wait_until(landed, timeout=60, what="two ledger rows in QuestDB, counted")
        assert live.metric("seamless_coordinator_ledger_written_total") == 2.0

    rows = ledger_rows(questdb_server.pg_dsn, table)
    assert ("completed", "ledger-node:60:0:59::", "ledger-node", "60", done, "worker-a", None) in [
        tuple(r) for r in rows
    ]
    failed_row = next(r for r in rows if r[0] == "failed")
    assert failed_row[4] == failed and failed_row[6] == "exchange 502"


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung QuestDB."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((LOOPBACK, 0))
    server.listen(64)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for conn in accepted:
        conn.close()
    server.close()


@pytest.mark.parametrize("outage", ["refused", "hung"])
async def test_questdb_outage_never_blocks_leases(
    make_app: AppFactory, outage: str, silent_listener: int
) -> None:
    port = free_port() if outage == "refused" else silent_listener
    dsn = f"postgresql://admin:quest@{LOOPBACK}:{port}/qdb"
    async with make_app(questdb_dsn=dsn, ledger_buffer=5) as live:
        started = time.monotonic()
        for i in range(8):
            await claim_and_finish(live, f"outage-node:60:{i}:{i}::")
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"16 lease calls took {elapsed:.2f} s during a QuestDB outage"
        ledger = live.app.state.service.ledger
        assert ledger.pending == 5
        assert live.metric("seamless_coordinator_ledger_dropped_total") == 3.0
        assert live.metric("seamless_coordinator_ledger_written_total") == 0.0
        health = await live.client.get("/healthz")
        assert health.status_code == 200  # the ledger is not a health dependency
