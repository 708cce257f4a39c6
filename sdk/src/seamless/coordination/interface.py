"""The interface every backfill coordinator offers (the HTTP client and the in-memory one),
so the data provider never knows which it holds.

A claim either grants a lease or says plainly why not; failures to get an answer raise
`CoordinatorUnavailable` and a token that is no longer live raises `LeaseLost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from seamless.coordination.protocol import Lease, LeaseInfo, RatioResponse


@dataclass(frozen=True)
class Granted:
    lease: Lease
    completion_ratio: float | None = None


@dataclass(frozen=True)
class NotGranted:
    key: str
    reason: Literal["held", "completed", "failed"]
    lease_until_ms: int | None = None
    # reason "completed" on a claim that named a job: the job's ratio with this shard counted.
    completion_ratio: float | None = None


ClaimOutcome = Granted | NotGranted


class Coordinator(Protocol):
    async def claim(
        self,
        key: str,
        lease_ms: int,
        *,
        job_id: str | None = None,
        shards_total: int | None = None,
    ) -> ClaimOutcome:
        """Claim `key`; `NotGranted` when held/completed/parked. Raises CoordinatorUnavailable."""
        ...

    async def renew(self, lease: Lease, lease_ms: int) -> Lease:
        """Extend a live lease. Raises LeaseLost if the token is no longer live."""
        ...

    async def complete(self, lease: Lease) -> RatioResponse:
        """Mark the key done. Raises LeaseLost if the token is no longer live."""
        ...

    async def fail(self, lease: Lease, reason: str) -> RatioResponse:
        """Give the key back with a reason (parked after too many attempts). Raises LeaseLost."""
        ...

    async def inspect(self, key: str) -> LeaseInfo: ...

    async def health(self) -> None:
        """Return if healthy, else raise CoordinatorUnavailable."""
        ...

    async def aclose(self) -> None: ...
