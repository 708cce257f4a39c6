"""hold_lease: claims, renews at TTL/3, completes or fails on exit, and tells the holder at
once when the lease is lost (cancelling the body)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import Granted
from seamless.coordination.leases import hold_lease
from seamless.coordination.memory import InMemoryCoordinator
from seamless.coordination.protocol import Lease
from seamless.errors import LeaseLost, LeaseNotGranted

pytestmark = pytest.mark.unit


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.005)


async def test_clean_exit_completes() -> None:
    coord = InMemoryCoordinator()
    async with hold_lease(coord, "k", 1000) as held:
        # The service's fencing token: the claim's clock in microseconds (store.py).
        assert held.token == (await coord.inspect("k")).token and held.token > 10**15
        assert not held.is_lost
    assert held.result is not None and held.result.completion_ratio == 1.0
    assert (await coord.inspect("k")).state == "completed"


async def test_error_in_body_fails_the_key_and_propagates() -> None:
    coord = InMemoryCoordinator()
    with pytest.raises(ValueError, match="bad bar"):
        async with hold_lease(coord, "k", 1000):
            raise ValueError("bad bar")
    info = await coord.inspect("k")
    assert info.state == "free"
    assert info.last_reason == "ValueError: bad bar"


async def test_not_granted_raises() -> None:
    coord = InMemoryCoordinator()
    await coord.claim("k", 5000)
    with pytest.raises(LeaseNotGranted) as caught:
        async with hold_lease(coord, "k", 1000):
            raise AssertionError("body must not run")
    assert caught.value.reason == "held"


async def test_renews_every_third_of_the_ttl() -> None:
    coord = InMemoryCoordinator()
    async with hold_lease(coord, "k", 300) as held:
        started = time.monotonic()
        await wait_for(lambda: held.renewals >= 3)
        elapsed = time.monotonic() - started
        # Three renewals at TTL/3 = 0.1 s take about 0.3 s; the lease (0.3 s) never lapsed.
        assert elapsed >= 0.25
        assert (await coord.inspect("k")).state == "held"
    assert (await coord.inspect("k")).state == "completed"


async def test_takes_over_an_already_granted_lease() -> None:
    coord = InMemoryCoordinator()
    granted = await coord.claim("k", 300)
    assert isinstance(granted, Granted)
    async with hold_lease(coord, granted, 300) as held:
        assert held.token == granted.lease.token
        await wait_for(lambda: held.renewals >= 1)
    assert (await coord.inspect("k")).state == "completed"


async def test_lost_lease_cancels_the_body_at_once() -> None:
    clock = ManualClock()
    coord = InMemoryCoordinator(clock_ms=clock)
    body_cancelled = asyncio.Event()
    started = time.monotonic()
    with pytest.raises(LeaseLost) as caught:
        async with hold_lease(coord, "k", 600, renew_interval=0.05) as held:
            clock.now += 10_000  # the coordinator's view: our lease ran out...
            taken = await coord.claim("k", 60_000)  # ...and another worker took the key
            assert isinstance(taken, Granted)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                body_cancelled.set()
                raise
    assert body_cancelled.is_set()
    assert held.is_lost
    assert caught.value.token == held.token
    assert time.monotonic() - started < 2.0
    # The new holder is untouched.
    assert isinstance(taken, Granted)
    assert (await coord.inspect("k")).token == taken.lease.token


async def test_loss_is_signalled_without_cancelling_when_asked() -> None:
    clock = ManualClock()
    coord = InMemoryCoordinator(clock_ms=clock)
    with pytest.raises(LeaseLost):
        async with hold_lease(coord, "k", 600, renew_interval=0.02, cancel_on_loss=False) as held:
            clock.now += 10_000
            await coord.claim("k", 60_000)
            error = await asyncio.wait_for(held.wait_lost(), timeout=5)
            assert error.key == "k"
            with pytest.raises(LeaseLost):
                held.raise_if_lost()


async def test_unreachable_coordinator_loses_the_lease_at_its_deadline() -> None:
    memory = InMemoryCoordinator()
    granted = await memory.claim("k", 400)
    assert isinstance(granted, Granted)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with CoordinatorClient(f"http://127.0.0.1:{port}", timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(LeaseLost, match="expired"):
                async with hold_lease(client, granted, 400):
                    await asyncio.sleep(30)
            elapsed = time.monotonic() - started
    # Renewals kept failing; the lease was given up when it ran out locally (~0.4 s).
    assert 0.35 <= elapsed < 2.0


async def test_outside_cancellation_fails_the_key() -> None:
    coord = InMemoryCoordinator()
    entered = asyncio.Event()

    async def worker() -> None:
        async with hold_lease(coord, "k", 1000):
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(worker())
    await asyncio.wait_for(entered.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    info = await coord.inspect("k")
    assert (info.state, info.last_reason) == ("free", "cancelled")


class _CancelsItsRenewerAsItAnswers(InMemoryCoordinator):
    """The dev coordinator, except that its first renewal cancels the renewer task just as
    the renewal's answer is ready: the moment `hold_lease`'s exit stops the renewer while a
    renewal is returning (under load, at every shard's end)."""

    def __init__(self) -> None:
        super().__init__()
        self.renew_calls = 0

    async def renew(self, lease: Lease, lease_ms: int) -> Lease:
        self.renew_calls += 1
        renewed = await super().renew(lease, lease_ms)
        if self.renew_calls == 1:
            for task in asyncio.all_tasks():
                if task.get_name().startswith("renew lease"):
                    task.cancel()
        return renewed


async def test_renewer_cancelled_as_its_renewal_returns_stops() -> None:
    # Python 3.11's asyncio.wait_for returned the renewal and dropped that cancel: the
    # renewer lived on, renewing the lease for ever, and exit waited on it for ever
    # (chaos scenario 6 hung that way under CPU load).
    coord = _CancelsItsRenewerAsItAnswers()
    renew_every = 0.05  # a long lease renewed often: only the renewer's survival is tested
    async with asyncio.timeout(5):
        async with hold_lease(coord, "k", 10_000, renew_interval=renew_every) as held:
            await wait_for(lambda: coord.renew_calls >= 1)
            await asyncio.sleep(6 * renew_every)  # a live renewer renews again meanwhile
            assert coord.renew_calls == 1, "the cancelled renewer kept renewing"
            assert held.renewals == 1
    assert (await coord.inspect("k")).state == "completed"


class _RenewRaisesUnexpectedly(InMemoryCoordinator):
    async def renew(self, lease: Lease, lease_ms: int) -> Lease:
        raise RuntimeError("Cannot send a request, as the client has been closed.")


async def test_a_renewer_that_cannot_go_on_loses_the_lease_at_once() -> None:
    # Before, the renewer died silently and the body worked on, unrenewed, until the
    # coordinator expired the lease under it.
    coord = _RenewRaisesUnexpectedly()
    async with asyncio.timeout(5):
        with pytest.raises(LeaseLost, match="renewer failed: RuntimeError"):
            async with hold_lease(coord, "k", 10_000, renew_interval=0.01):
                await asyncio.sleep(30)
