"""One Redis connection per replica for the lease scripts, with the calls of concurrent
requests pipelined on it.

Why: under load most of a replica's CPU per request went to redis-py's per-command path
(pool checkout and release, retry wrapper, a timeout context and a socket write per
command, about 45 us a call), and Redis pays a read and a write system call per command.
Here every script call made while the previous batch is on the wire is queued; the queue
goes out as one write and its replies are read back in order (Redis answers a
connection's commands in the order sent), so a busy replica sends one batch per round
trip whatever the number of requests in it. Each call is still one ``EVALSHA``, atomic on
its own; there is no MULTI, and nothing about one call depends on another in its batch.

What a caller sees is what redis-py's own call gave it:

- an error reply (``NOSCRIPT``, a script error) raises in that caller only, as
  redis-py's exception; the rest of the batch is unaffected;
- a connection lost, refused, or a reply not read within ``socket_timeout`` fails every
  call of the batch in flight with redis-py's ``ConnectionError`` / ``TimeoutError``
  (which the service answers 503: the outcome is unknown, and the scripts answer a retry
  idempotently), and the connection is dropped; the next batch connects again. Calls
  queued behind that batch were never sent, so they go out on the new connection;
- a connection the server closed while idle (a Redis restart) is found before a batch is
  written, as redis-py's pool finds it when it hands a connection out, and the batch goes
  out on a new connection;
- nothing is retried here: a script retried after a lost reply would run twice.

The connection is redis-py's own, made by the client's pool, so the DSN's host, TLS,
credentials, database, timeouts and the handshake are exactly the client's. The service
uses this for one Redis only; on a Redis Cluster (slot routing) or through Sentinel, and
with ``WAIT`` for replicas (which would hold up every call behind it), calls go through the
redis-py client as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

Call = tuple[list[bytes], "asyncio.Future[Any]"]


class PipelinedConnection:
    def __init__(self, pool: ConnectionPool) -> None:
        self._connection: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
        self._queue: list[Call] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def execute(self, *args: EncodableT) -> Any:
        """Send one command with the next batch and return its reply."""
        if self._closed:
            raise RedisConnectionError("the pipelined connection is closed")
        packed = self._connection.pack_command(*args)
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._run(), name="redis-pipelined")
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((packed, future))
        self._wakeup.set()
        return await future

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None:
            # The loop ends on the flag too: redis-py writes under `asyncio.wait_for`, which
            # on Python 3.11 drops a cancel that arrives as the write completes (gh-86296).
            self._wakeup.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fail(self._queue, RedisConnectionError("the pipelined connection is closed"))
        self._queue = []
        await self._connection.disconnect()

    async def _run(self) -> None:
        batch: list[Call] = []
        try:
            while not self._closed:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue and not self._closed:
                    batch, self._queue = self._queue, []
                    await self._round_trip(batch)
                    batch = []
        finally:
            self._fail(batch, RedisConnectionError("the pipelined connection is closed"))

    async def _round_trip(self, batch: list[Call]) -> None:
        connection = self._connection
        try:
            await self._drop_if_stale()
            await connection.send_packed_command(
                [chunk for packed, _ in batch for chunk in packed], check_health=False
            )
        except Exception as exc:  # redis-py disconnected already; fail the whole batch
            self._fail(batch, exc)
            return
        answered = 0
        try:
            # One deadline for the batch's replies, `socket_timeout` as each read had; a
            # read cut short disconnects (redis-py does on any error while reading).
            async with asyncio.timeout(connection.socket_timeout):
                for _, future in batch:
                    try:
                        reply = await connection.read_response(timeout=math.inf)
                    except ResponseError as exc:  # its own error reply; the batch goes on
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(reply)
                    answered += 1
        except TimeoutError:
            self._fail(batch[answered:], RedisTimeoutError("Timeout reading from Redis"))
        except Exception as exc:  # the connection is gone (redis-py disconnected it)
            self._fail(batch[answered:], exc)

    async def _drop_if_stale(self) -> None:
        """Disconnect a connection the server closed (a Redis restart) or that has bytes no
        call waits for, as redis-py's pool does when it hands a connection out; the batch
        then goes out on a new connection instead of failing on the dead one."""
        connection = self._connection
        if not connection.is_connected:
            return
        try:
            stale = await connection.can_read()
        except (RedisConnectionError, OSError):
            stale = True
        if stale:
            await connection.disconnect()

    @staticmethod
    def _fail(calls: list[Call], exc: BaseException) -> None:
        for _, future in calls:
            if not future.done():
                future.set_exception(exc)
