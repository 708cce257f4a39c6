"""Hold a coordinator lease for the duration of a block of work.

    async with hold_lease(coordinator, key, lease_ms=120_000) as held:
        ...  # work; write with held.token as the fencing token

On entry the key is claimed (or an already granted lease is taken over); a background task
renews it every TTL/3, like etcd's KeepAlive. If the coordinator says the token is stale,
or no renewal succeeds before the lease would run out locally, the lease is lost: `held.lost`
is set at once and, by default, the body is cancelled and `LeaseLost` comes out of the
`async with`. On a clean exit the key is completed; if the body raises, the key is failed
with the error as reason (so another worker may retry it) and the error propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import structlog

from seamless.coordination.interface import Coordinator, Granted, NotGranted
from seamless.coordination.protocol import Lease, RatioResponse
from seamless.errors import CoordinatorError, LeaseLost, LeaseNotGranted

log = structlog.get_logger("seamless.leases")

# How long exit may spend telling the coordinator about a cancelled body.
CANCEL_REPORT_TIMEOUT = 2.0


class HeldLease:
    """What the body sees: the current lease, and whether it has been lost."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease
        self.lost = asyncio.Event()
        self.lost_error: LeaseLost | None = None
        self.result: RatioResponse | None = None
        self.renewals = 0

    @property
    def lease(self) -> Lease:
        return self._lease

    @property
    def key(self) -> str:
        return self._lease.key

    @property
    def token(self) -> int:
        """The fencing token: pass it to storage so a superseded holder's writes are refused."""
        return self._lease.token

    @property
    def is_lost(self) -> bool:
        return self.lost.is_set()

    def raise_if_lost(self) -> None:
        """Call before committing work; raises LeaseLost if the lease is gone."""
        if self.lost_error is not None:
            raise self.lost_error

    async def wait_lost(self) -> LeaseLost:
        await self.lost.wait()
        assert self.lost_error is not None
        return self.lost_error


class hold_lease:
    """Async context manager claiming/holding/renewing/completing one lease."""

    def __init__(
        self,
        coordinator: Coordinator,
        target: str | Granted,
        lease_ms: int,
        *,
        job_id: str | None = None,
        shards_total: int | None = None,
        renew_interval: float | None = None,
        cancel_on_loss: bool = True,
    ) -> None:
        self.coordinator = coordinator
        self.target = target
        self.lease_ms = lease_ms
        self.job_id = job_id
        self.shards_total = shards_total
        # TTL/3: two renewals can fail before the lease runs out.
        self.renew_interval = renew_interval if renew_interval is not None else lease_ms / 3000
        self.cancel_on_loss = cancel_on_loss
        self._held: HeldLease | None = None
        self._owner: asyncio.Task[object] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._body_running = False
        self._cancelled_by_us = False
        self._deadline = 0.0

    async def __aenter__(self) -> HeldLease:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        if isinstance(self.target, Granted):
            lease = self.target.lease
        else:
            outcome = await self.coordinator.claim(
                self.target, self.lease_ms, job_id=self.job_id, shards_total=self.shards_total
            )
            if isinstance(outcome, NotGranted):
                raise LeaseNotGranted(outcome.key, outcome.reason, outcome.lease_until_ms)
            lease = outcome.lease
        # Measured from before the claim was sent: the lease cannot end later than this.
        self._deadline = sent + self.lease_ms / 1000
        self._held = HeldLease(lease)
        self._owner = asyncio.current_task()
        self._body_running = True
        self._renewer = asyncio.create_task(
            self._renew_loop(self._held), name=f"renew lease {lease.key}"
        )
        return self._held

    async def _renew_loop(self, held: HeldLease) -> None:
        loop = asyncio.get_running_loop()
        retry_delay = max(0.01, self.renew_interval / 4)
        delay = self.renew_interval
        while True:
            remaining = self._deadline - loop.time()
            await asyncio.sleep(max(0.0, min(delay, remaining)))
            sent = loop.time()
            remaining = self._deadline - sent
            if remaining <= 0:
                self._lose(held, LeaseLost(held.key, held.token, "expired: no renewal in time"))
                return
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancel
                # that arrives as the renewal returns, and a renewer that survives
                # _stop_renewing keeps the lease alive forever while exit awaits it
                async with asyncio.timeout(remaining):
                    renewed = await self.coordinator.renew(held.lease, self.lease_ms)
            except LeaseLost as exc:
                self._lose(held, exc)
                return
            except (CoordinatorError, TimeoutError) as exc:
                # Still ours until the deadline: keep trying, sooner than usual.
                log.warning(
                    "seamless.lease.renew_failed",
                    lease_key=held.key,
                    token=held.token,
                    error=f"{type(exc).__name__}: {exc}",
                    seconds_left=round(self._deadline - loop.time(), 3),
                )
                delay = retry_delay
                continue
            except Exception as exc:  # e.g. the client was closed: no renewal can follow
                error = LeaseLost(held.key, held.token, f"renewer failed: {type(exc).__name__}")
                self._lose(held, error)
                return
            held._lease = renewed
            held.renewals += 1
            self._deadline = sent + self.lease_ms / 1000
            delay = self.renew_interval

    def _lose(self, held: HeldLease, error: LeaseLost) -> None:
        held.lost_error = error
        held.lost.set()
        log.warning("seamless.lease.lost", lease_key=held.key, token=held.token, reason=str(error))
        owner = self._owner
        if self.cancel_on_loss and self._body_running and owner is not None and not owner.done():
            self._cancelled_by_us = True
            owner.cancel(msg=f"lease on {held.key!r} lost")

    async def _stop_renewing(self) -> None:
        renewer = self._renewer
        if renewer is None:
            return
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._body_running = False
        held = self._held
        assert held is not None and self._owner is not None
        # Our cancellation, not the caller's: take it back so only LeaseLost propagates,
        # unless someone else cancelled the task too.
        if self._cancelled_by_us and self._owner.uncancel() > 0:
            await self._stop_renewing()
            return False
        await self._stop_renewing()
        if held.lost_error is not None:
            if exc is None or self._cancelled_by_us:
                raise held.lost_error from None
            exc.add_note(f"and the lease was lost: {held.lost_error}")
            return False
        if exc is None:
            held.result = await self.coordinator.complete(held.lease)
            return False
        if isinstance(exc, asyncio.CancelledError):
            with contextlib.suppress(CoordinatorError, TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(CANCEL_REPORT_TIMEOUT):
                    await asyncio.shield(self.coordinator.fail(held.lease, "cancelled"))
            return False
        reason = f"{type(exc).__name__}: {exc}"
        try:
            held.result = await self.coordinator.fail(held.lease, reason)
        except CoordinatorError as report_error:
            exc.add_note(f"and reporting the failure to the coordinator failed: {report_error}")
        return False
