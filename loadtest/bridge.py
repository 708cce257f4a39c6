"""Run the async SDK from locust's gevent users.

Locust users are greenlets; the SDK is asyncio. After locust's monkey-patching, asyncio's
selector is gevent's, so an asyncio loop running in ONE greenlet waits cooperatively: while
it has nothing to do, the users run. Users hand coroutines to that loop with
``call_soon_threadsafe`` (which wakes its selector) and block on a gevent `AsyncResult`,
which yields to the hub until the loop sets it. One loop per process, started lazily (after
locust's ``--processes`` fork), so every user of a process shares the SDK's connection
pools and its in-memory cache, as the threads of one service would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import gevent
from gevent.event import AsyncResult

T = TypeVar("T")


class AsyncBridge:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._greenlet = gevent.spawn(self._run_loop)
        gevent.sleep(0)  # let the loop start before anyone submits work

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop; block this greenlet (only) until it finishes."""
        result: AsyncResult = AsyncResult()

        def finished(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                result.set_exception(asyncio.CancelledError())
            elif (exc := task.exception()) is not None:
                result.set_exception(exc)
            else:
                result.set(task.result())

        def start() -> None:
            self.loop.create_task(coro).add_done_callback(finished)

        self.loop.call_soon_threadsafe(start)
        value: T = result.get()
        return value

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._greenlet.join(timeout=5)
        self.loop.close()
