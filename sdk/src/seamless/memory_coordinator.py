"""An in-process coordinator with the service's semantics, for the dev profile and tests.

Same rules as the Redis-backed service: fencing tokens strictly increase per key; a live
lease refuses other claims (`held`); an expired lease can be re-claimed with a higher token;
`complete`/`renew`/`fail` with any token but the live one raise `LeaseLost` and change
nothing; `fail` makes the key claimable again until it has used `max_attempts` claims, then
parks it as `failed`; aligned-shard jobs report completed shards / shards_total.

Retries are idempotent as on the service: a claim repeated with the request id of the key's
live lease gets that lease back unchanged; a complete or fail repeated with the token that
finished the key answers as the first did and changes nothing. (One process is one client
and one holder here, so the request id and the token are all there is to match.)

Ownership and roles (the service's 403s) have nothing to decide here: the one client owns
every lease, so `inspect` always shows the token (and `LeaseInfo.client` stays None, as no
bearer identity exists), and there is no forced recovery to guard.

Leases are not shared between processes: that is why prod never uses it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from seamless.coordination import ClaimOutcome, Granted, NotGranted
from seamless.errors import InvalidRequestError, LeaseLost
from seamless.protocol import (
    MAX_KEY_LENGTH,
    MAX_LEASE_MS,
    MAX_REQUEST_ID_LENGTH,
    MIN_LEASE_MS,
    REQUEST_ID_PATTERN,
    Lease,
    LeaseInfo,
    LeaseState,
    RatioResponse,
)

DEFAULT_MAX_ATTEMPTS = 5


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _KeyState:
    state: LeaseState = "free"
    token: int = 0
    holder: str | None = None
    lease_until_ms: int | None = None
    attempts: int = 0
    job_id: str | None = None
    last_reason: str | None = None
    # The request id the live lease was granted to, and the token of the last fail.
    request_id: str | None = None
    failed_token: int | None = None


@dataclass
class _Job:
    shards_total: int | None = None
    done: set[str] = field(default_factory=set)

    def ratio(self) -> float | None:
        if not self.shards_total:
            return None
        return min(1.0, len(self.done) / self.shards_total)


class InMemoryCoordinator:
    """Implements `seamless.coordination.Coordinator` in process memory."""

    def __init__(
        self,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        holder: str = "in-memory",
        clock_ms: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        if max_attempts < 1:
            raise InvalidRequestError("max_attempts", max_attempts, "an integer >= 1")
        self.max_attempts = max_attempts
        self.holder = holder
        self._clock_ms = clock_ms
        self._keys: dict[str, _KeyState] = {}
        self._jobs: dict[str, _Job] = {}
        self._lock = asyncio.Lock()
        self.expired_takeovers = 0

    async def claim(
        self,
        key: str,
        lease_ms: int,
        *,
        job_id: str | None = None,
        shards_total: int | None = None,
        request_id: str | None = None,
    ) -> ClaimOutcome:
        _check_key(key)
        _check_lease_ms(lease_ms)
        if shards_total is not None and shards_total < 1:
            raise InvalidRequestError("shards_total", shards_total, "an integer >= 1")
        if request_id is not None:
            _check_request_id(request_id)
        async with self._lock:
            now = self._clock_ms()
            entry = self._keys.setdefault(key, _KeyState())
            if entry.state == "completed" and job_id is not None:
                # Done under any job, the shard counts for this one too (as the service does).
                job = self._jobs.setdefault(job_id, _Job())
                if shards_total is not None:
                    job.shards_total = shards_total
                job.done.add(key)
                return NotGranted(
                    key=key, reason="completed", completion_ratio=self._job_ratio(job_id)
                )
            if entry.state in ("completed", "failed"):
                return NotGranted(key=key, reason=entry.state)
            if entry.state == "held":
                assert entry.lease_until_ms is not None
                if entry.lease_until_ms > now:
                    if request_id is not None and request_id == entry.request_id:
                        return Granted(
                            lease=self._lease_of(key, entry),
                            completion_ratio=self._job_ratio(entry.job_id),
                        )
                    return NotGranted(key=key, reason="held", lease_until_ms=entry.lease_until_ms)
                self.expired_takeovers += 1
                if entry.attempts >= self.max_attempts:
                    entry.state = "failed"
                    entry.last_reason = f"lease expired on each of {entry.attempts} attempts"
                    return NotGranted(key=key, reason="failed")
            entry.token += 1
            entry.attempts += 1
            entry.state = "held"
            entry.holder = self.holder
            entry.lease_until_ms = now + lease_ms
            entry.request_id = request_id
            if job_id is not None:
                entry.job_id = job_id
                job = self._jobs.setdefault(job_id, _Job())
                if shards_total is not None:
                    job.shards_total = shards_total
            return Granted(
                lease=self._lease_of(key, entry), completion_ratio=self._job_ratio(entry.job_id)
            )

    async def renew(self, lease: Lease, lease_ms: int) -> Lease:
        _check_lease_ms(lease_ms)
        async with self._lock:
            entry = self._live(lease)
            entry.lease_until_ms = self._clock_ms() + lease_ms
            return Lease(
                key=lease.key,
                token=entry.token,
                lease_until_ms=entry.lease_until_ms,
                holder=entry.holder,
            )

    async def complete(self, lease: Lease) -> RatioResponse:
        async with self._lock:
            entry = self._keys.get(lease.key)
            # A repeat of the complete that finished the key answers again; anything else
            # must be the live lease.
            if entry is None or (entry.state, entry.token) != ("completed", lease.token):
                entry = self._live(lease)
                entry.state = "completed"
                entry.lease_until_ms = self._clock_ms()
                entry.last_reason = None
                if entry.job_id is not None:
                    self._jobs.setdefault(entry.job_id, _Job()).done.add(lease.key)
            ratio = self._job_ratio(entry.job_id)
            return RatioResponse(
                completion_ratio=1.0 if ratio is None else ratio,
                job_id=entry.job_id,
                attempts=entry.attempts,
            )

    async def fail(self, lease: Lease, reason: str) -> RatioResponse:
        async with self._lock:
            entry = self._keys.get(lease.key)
            if (
                entry is not None
                and entry.state in ("free", "failed")
                and entry.token == entry.failed_token == lease.token
            ):
                parked = entry.state == "failed"  # a repeat of the fail that freed or parked it
            else:
                entry = self._live(lease)
                parked = entry.attempts >= self.max_attempts
                entry.state = "failed" if parked else "free"
                entry.lease_until_ms = self._clock_ms()
                entry.last_reason = reason
                entry.failed_token = lease.token
            ratio = self._job_ratio(entry.job_id)
            return RatioResponse(
                completion_ratio=0.0 if ratio is None else ratio,
                job_id=entry.job_id,
                parked=parked,
                attempts=entry.attempts,
            )

    async def inspect(self, key: str) -> LeaseInfo:
        _check_key(key)
        async with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                return LeaseInfo(key=key, state="free")
            state = entry.state
            if state == "held" and (entry.lease_until_ms or 0) <= self._clock_ms():
                state = "free"  # ran out: claimable, last holder still shown
            return LeaseInfo(
                key=key,
                state=state,
                holder=entry.holder,
                token=entry.token or None,
                lease_until_ms=entry.lease_until_ms,
                attempts=entry.attempts,
                job_id=entry.job_id,
                last_reason=entry.last_reason,
            )

    async def health(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _lease_of(self, key: str, entry: _KeyState) -> Lease:
        assert entry.lease_until_ms is not None
        return Lease(
            key=key, token=entry.token, lease_until_ms=entry.lease_until_ms, holder=entry.holder
        )

    def _live(self, lease: Lease) -> _KeyState:
        """The key's state if `lease` is its live lease; else LeaseLost (nothing changes)."""
        entry = self._keys.get(lease.key)
        if entry is None or entry.state != "held" or entry.token != lease.token:
            raise LeaseLost(lease.key, lease.token, "stale")
        if entry.lease_until_ms is None or entry.lease_until_ms <= self._clock_ms():
            raise LeaseLost(lease.key, lease.token, "expired")
        return entry

    def _job_ratio(self, job_id: str | None) -> float | None:
        if job_id is None:
            return None
        job = self._jobs.get(job_id)
        return job.ratio() if job is not None else None


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidRequestError(
            "key", key, f"1 to {MAX_KEY_LENGTH} printable characters (no control characters)"
        )


def _check_lease_ms(lease_ms: int) -> None:
    if not MIN_LEASE_MS <= lease_ms <= MAX_LEASE_MS:
        raise InvalidRequestError(
            "lease_ms", lease_ms, f"an integer from {MIN_LEASE_MS} to {MAX_LEASE_MS}"
        )


def _check_request_id(request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID_LENGTH or not re.fullmatch(REQUEST_ID_PATTERN, request_id):
        raise InvalidRequestError(
            "request_id",
            request_id,
            f"1 to {MAX_REQUEST_ID_LENGTH} characters of A-Z, a-z, 0-9, '_' and '-'",
        )
