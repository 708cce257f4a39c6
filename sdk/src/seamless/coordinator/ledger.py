"""The audit ledger: completed and failed shards appended to a QuestDB table.

Leases never wait for QuestDB. `record()` only appends to a bounded in-memory buffer; a
background task writes batches over QuestDB's PostgreSQL wire (the DSN QMTL's config
already carries) and retries with exponential backoff (tenacity) while QuestDB is away.
When the buffer is full the new row is dropped and counted
(`seamless_coordinator_ledger_dropped_total`), so an outage costs audit rows, not leases.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

import psycopg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential_jitter

from seamless.coordinator.metrics import CoordinatorMetrics

_WRITE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LedgerRow:
    ts: datetime
    event: str  # completed | failed | parked
    lease_key: str
    node_id: str
    bar_interval: str
    token: int
    holder: str
    client: str
    coordinator_id: str
    attempts: int
    job_id: str | None
    completion_ratio: float
    reason: str | None


_COLUMNS = (
    "ts TIMESTAMP, event SYMBOL, lease_key VARCHAR, node_id SYMBOL, bar_interval SYMBOL, "
    "token LONG, holder VARCHAR, client SYMBOL, coordinator_id SYMBOL, attempts INT, "
    "job_id VARCHAR, completion_ratio DOUBLE, reason VARCHAR"
)
_NAMES = (
    "ts, event, lease_key, node_id, bar_interval, token, holder, client, coordinator_id, "
    "attempts, job_id, completion_ratio, reason"
)


class _RetryableWrite(Exception):
    pass


class LedgerWriter:
    def __init__(
        self,
        dsn: str,
        table: str,
        *,
        capacity: int,
        metrics: CoordinatorMetrics,
        log: Any,
        batch_size: int = 500,
        flush_interval_s: float = 0.25,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self.table = table
        self._capacity = capacity
        self._metrics = metrics
        self._log = log
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_backoff_s = max_backoff_s
        self._buffer: deque[LedgerRow] = deque()
        self._wakeup = asyncio.Event()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._table_ready = False

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(self, row: LedgerRow) -> None:
        """Buffer one row; never blocks, never raises."""
        if len(self._buffer) >= self._capacity:
            self._metrics.ledger_dropped.inc()
            return
        self._buffer.append(row)
        self._metrics.ledger_pending.set(len(self._buffer))
        if len(self._buffer) >= self._batch_size:
            self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def stop(self, flush_timeout_s: float = 2.0) -> None:
        """Stop the writer, giving buffered rows one bounded chance to land."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._buffer:
            try:
                async with asyncio.timeout(flush_timeout_s):
                    await self._write_batch()
            except (TimeoutError, psycopg.Error, OSError, _RetryableWrite):
                self._log.warning("ledger.unflushed_at_stop", rows=len(self._buffer))
        await self._close()

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancel (stop) that
            # arrives as the wakeup fires, and stop() would then wait on this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval_s):
                    await self._wakeup.wait()
            self._wakeup.clear()
            while self._buffer:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type((psycopg.Error, OSError, _RetryableWrite)),
                    wait=wait_exponential_jitter(
                        multiplier=0.2, max=self._max_backoff_s, jitter=0.2
                    ),
                    stop=stop_never,
                    before_sleep=self._on_retry,
                    reraise=True,
                ):
                    with attempt:
                        await self._write_batch()

    def _on_retry(self, state: Any) -> None:
        self._metrics.ledger_errors.inc()
        exc = state.outcome.exception() if state.outcome else None
        # The exception's class only: messages may quote the DSN.
        self._log.warning(
            "ledger.write_failed",
            table=self.table,
            error=str(exc) if isinstance(exc, _RetryableWrite) else type(exc).__name__,
            pending=len(self._buffer),
            attempt=state.attempt_number,
        )

    async def _write_batch(self) -> None:
        batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
        if not batch:
            return
        try:
            async with asyncio.timeout(_WRITE_TIMEOUT_S):
                await self._insert(batch)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self._close()
            raise _RetryableWrite(type(exc).__name__) from None
        for _ in batch:
            self._buffer.popleft()
        self._metrics.ledger_written.inc(len(batch))
        self._metrics.ledger_pending.set(len(self._buffer))

    async def _insert(self, batch: list[LedgerRow]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=3
            )
            self._table_ready = False
        conn = self._conn
        if not self._table_ready:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ({_COLUMNS}) "
                "TIMESTAMP(ts) PARTITION BY DAY WAL"
            )
            self._table_ready = True
        placeholders = ", ".join(["%s"] * 13)
        async with conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO {self.table} ({_NAMES}) VALUES ({placeholders})",
                [astuple(row) for row in batch],
            )

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await conn.close()
