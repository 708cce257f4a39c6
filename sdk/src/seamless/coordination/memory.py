"""The coordinator of the dev profile and of tests: the service's own lease state machine,
run inside this process.

There is one lease state machine: the coordinator's Lua scripts (`seamless/coordinator/`
``*.lua``). Here they run through the service's own `LeaseStore` on an in-process Redis
(fakeredis with its Lua engine, lupa, Lua 5.1 as in Redis), so every rule is the
service's by construction: fencing tokens that strictly increase per key, a live lease
refusing other claims (`held`), re-claim after expiry with a higher token, `LeaseLost` for
any token but the live one, fail -> claimable -> parked after `max_attempts` claims, the
idempotent replays of a claim (same request id) and of a complete or fail (same token),
and the completion ratio of aligned-shard jobs.

This module does only what `coordinator/app.py` and `CoordinatorClient` do around the
store: each request is validated with the protocol's request models (`validate_request`,
as the service validates its bodies), so a bad argument raises `InvalidRequestError`
naming the field and the store never sees it; and each outcome is mapped to the
`Coordinator` interface as the HTTP client reads the service's answer (a refused claim is
`NotGranted` with the key's real completion ratio, a stale token `LeaseLost` with the
service's detail).

Ownership and roles (the service's 403s) have nothing to decide here: one process is one
client, with no bearer identity, so every lease is claimed by the empty client (and
`LeaseInfo.client` stays None), `inspect` always shows the token, and there is no forced
recovery to guard. Rate limiting is off and completed records are kept, so no key has a
Redis TTL; no sweeper runs (no one is told of expiries).

Time: the scripts read the Redis server's clock (TIME). The in-process server's TIME
answers from `clock_ms` (the wall clock by default, then at microsecond resolution), so a
test that moves its clock moves lease expiry exactly as the Redis host's clock does for
the service. Tokens are therefore large (the clock in microseconds, see store.py), not
1, 2, 3.

`tests/integration/coordinator/test_lease_state_machines_agree.py` drives random sequences
of operations against this coordinator and against the service on a real Redis, and
requires the same outcomes.

Leases are not shared between processes: that is why prod never uses it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NoReturn, cast

from fakeredis import FakeAsyncRedis, FakeServer
from fakeredis.aioredis import AsyncFakeSocket, FakeAsyncRedisConnection

from seamless.coordination.interface import ClaimOutcome, Granted, NotGranted
from seamless.coordination.protocol import (
    ClaimRequest,
    CompleteRequest,
    FailRequest,
    Lease,
    LeaseInfo,
    RatioResponse,
    RecoverRequest,
    RenewRequest,
    validate_request,
)
from seamless.coordinator.store import (
    Finished,
    Forbidden,
    LeaseStore,
    RateLimited,
    Refused,
    Renewed,
    Stale,
)
from seamless.errors import InvalidRequestError, LeaseLost

DEFAULT_MAX_ATTEMPTS = 5
# The service's default prefix; the empty client identity (no bearer token in process).
_PREFIX = "seamless:"
_CLIENT = ""
# The lab's redis-server major.minor: fakeredis shapes some replies by version.
_REDIS_VERSION = (7, 0)


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class _ClockedServer(FakeServer):
    """An in-process Redis whose TIME reads `clock_us`."""

    def __init__(self, clock_us: Callable[[], int]) -> None:
        super().__init__(version=_REDIS_VERSION)
        self.clock_us = clock_us


class _ClockedSocket(AsyncFakeSocket):
    def time(self) -> list[bytes]:
        seconds, micros = divmod(cast(_ClockedServer, self._server).clock_us(), 1_000_000)
        return [str(seconds).encode(), str(micros).encode()]


class _ClockedConnection(FakeAsyncRedisConnection):
    async def _connect(self) -> None:
        await super()._connect()
        # The socket fakeredis just built, answering TIME from the server's clock (commands
        # are looked up on the socket by name, so the override is all it takes).
        self._sock.__class__ = _ClockedSocket


class InMemoryCoordinator:
    """Implements `seamless.coordination.interface.Coordinator` in process memory."""

    def __init__(
        self,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        holder: str = "in-memory",
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise InvalidRequestError("max_attempts", max_attempts, "an integer >= 1")
        self.max_attempts = max_attempts
        self.holder = holder
        if clock_ms is None:
            self._server = _ClockedServer(lambda: time.time_ns() // 1000)
        else:
            injected = clock_ms
            self._server = _ClockedServer(lambda: injected() * 1000)
        # One Redis client per event loop (a redis.asyncio connection belongs to its loop);
        # the leases live in the server, which all of them share.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lease_store: LeaseStore | None = None
        self.expired_takeovers = 0

    @property
    def store(self) -> LeaseStore:
        """The lease store this coordinator runs, bound to the running event loop."""
        loop = asyncio.get_running_loop()
        if self._lease_store is None or self._loop is not loop:
            redis = FakeAsyncRedis(
                server=self._server,
                connection_class=_ClockedConnection,
                version=_REDIS_VERSION,
                decode_responses=True,
            )
            self._lease_store = LeaseStore(redis, prefix=_PREFIX, max_attempts=self.max_attempts)
            self._loop = loop
        return self._lease_store

    async def claim(
        self,
        key: str,
        lease_ms: int,
        *,
        job_id: str | None = None,
        shards_total: int | None = None,
        request_id: str | None = None,
    ) -> ClaimOutcome:
        body = validate_request(
            ClaimRequest,
            key=key,
            lease_ms=lease_ms,
            job_id=job_id,
            shards_total=shards_total,
            holder=self.holder,
            request_id=request_id,
        )
        result = await self.store.claim(
            body.key,
            body.lease_ms,
            holder=self.holder,
            client=_CLIENT,
            job_id=body.job_id,
            shards_total=body.shards_total,
            request_id=body.request_id,
        )
        if isinstance(result, RateLimited):
            _unreachable(result)
        if result.lost is not None:
            self.expired_takeovers += 1
        if isinstance(result, Refused):
            return NotGranted(
                key=key,
                reason=result.reason,
                lease_until_ms=result.lease_until_ms,
                completion_ratio=result.completion_ratio,
            )
        lease = Lease(
            key=key, token=result.token, lease_until_ms=result.lease_until_ms, holder=result.holder
        )
        return Granted(lease=lease, completion_ratio=result.job.ratio(0.0))

    async def renew(self, lease: Lease, lease_ms: int) -> Lease:
        body = validate_request(RenewRequest, key=lease.key, token=lease.token, lease_ms=lease_ms)
        result = await self.store.renew(
            body.key, body.token, body.lease_ms, client=_CLIENT, identity=_CLIENT
        )
        if not isinstance(result, Renewed):
            _lost(lease, result)
        return Lease(
            key=lease.key,
            token=result.token,
            lease_until_ms=result.lease_until_ms,
            holder=result.holder or None,
        )

    async def complete(self, lease: Lease) -> RatioResponse:
        body = validate_request(CompleteRequest, key=lease.key, token=lease.token)
        result = await self.store.complete(body.key, body.token, client=_CLIENT, identity=_CLIENT)
        if not isinstance(result, Finished):
            _lost(lease, result)
        return RatioResponse(
            completion_ratio=result.job.ratio(1.0),
            job_id=result.job.job_id,
            attempts=result.attempts,
        )

    async def fail(self, lease: Lease, reason: str) -> RatioResponse:
        # The reason is cut to the service's limit, as CoordinatorClient cuts it.
        body = validate_request(FailRequest, key=lease.key, token=lease.token, reason=reason[:2048])
        result = await self.store.fail(
            body.key, body.token, body.reason, client=_CLIENT, identity=_CLIENT
        )
        if not isinstance(result, Finished):
            _lost(lease, result)
        return RatioResponse(
            completion_ratio=result.job.ratio(0.0),
            job_id=result.job.job_id,
            parked=result.parked,
            attempts=result.attempts,
        )

    async def inspect(self, key: str) -> LeaseInfo:
        # The key field every lease request shares (the service's inspect route puts the
        # same constraints on its path).
        validate_request(RecoverRequest, key=key)
        return await self.store.inspect(key)

    async def health(self) -> None:
        return None

    async def aclose(self) -> None:
        store, self._lease_store, self._loop = self._lease_store, None, None
        if store is not None:
            await store.redis.aclose()


def _lost(lease: Lease, result: Stale | Forbidden | RateLimited) -> NoReturn:
    """`LeaseLost` as CoordinatorClient raises it for the service's 409 stale."""
    if isinstance(result, Stale):
        raise LeaseLost(lease.key, lease.token, result.detail)
    _unreachable(result)


def _unreachable(result: Forbidden | RateLimited) -> NoReturn:
    # One client owns every lease (no 403) and rate limiting is off (no 429).
    raise AssertionError(f"the in-memory lease store answered {result!r}")
