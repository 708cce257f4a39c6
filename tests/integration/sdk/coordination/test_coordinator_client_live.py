"""The coordinator client against the real coordinator service (a `seamless coordinator
serve` process on the session's real Redis): lease semantics end to end, auth, rate limits,
the lease context manager and the prod factory."""

from __future__ import annotations

import asyncio
import time

import pytest
from sdk_client_servers import RealCoordinator
from seamless.config.model import SeamlessConfig
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import Granted, NotGranted
from seamless.coordination.leases import hold_lease
from seamless.errors import CoordinatorAuthError, CoordinatorUnavailable, LeaseLost
from seamless.factory import create_coordinator

pytestmark = pytest.mark.integration


def _client(server: RealCoordinator, **kwargs: object) -> CoordinatorClient:
    options: dict[str, object] = {"token": server.token, "worker_id": "live-test", **kwargs}
    return CoordinatorClient(server.url, **options)  # type: ignore[arg-type]


async def _granted(client: CoordinatorClient, key: str, lease_ms: int = 5000) -> Granted:
    outcome = await client.claim(key, lease_ms)
    assert isinstance(outcome, Granted), outcome
    return outcome


async def test_claim_held_complete_completed(real_coordinator: RealCoordinator) -> None:
    async with _client(real_coordinator) as a, _client(real_coordinator, worker_id="b") as b:
        granted = await _granted(a, "live:node:60:0:100::")
        refused = await b.claim("live:node:60:0:100::", 5000)
        assert isinstance(refused, NotGranted)
        assert refused.reason == "held"
        assert refused.lease_until_ms == granted.lease.lease_until_ms
        ratio = await a.complete(granted.lease)
        assert ratio.completion_ratio == 1.0
        done = await b.claim("live:node:60:0:100::", 5000)
        assert isinstance(done, NotGranted) and done.reason == "completed"
        info = await b.inspect("live:node:60:0:100::")
        assert (info.state, info.token, info.holder) == (
            "completed",
            granted.lease.token,
            "live-test",
        )


async def test_expired_lease_reclaimed_with_higher_token_old_holder_lost(
    real_coordinator: RealCoordinator,
) -> None:
    async with _client(real_coordinator) as client:
        old = await _granted(client, "live:expire", lease_ms=200)
        deadline = time.monotonic() + 5
        while (await client.inspect("live:expire")).state == "held":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        new = await _granted(client, "live:expire")
        assert new.lease.token > old.lease.token
        with pytest.raises(LeaseLost):
            await client.renew(old.lease, 5000)
        with pytest.raises(LeaseLost):
            await client.complete(old.lease)
        with pytest.raises(LeaseLost):
            await client.fail(old.lease, "late")
        assert (await client.inspect("live:expire")).token == new.lease.token


async def test_fail_then_parked_after_max_attempts(real_coordinator: RealCoordinator) -> None:
    async with _client(real_coordinator) as client:
        first = await _granted(client, "live:fail")
        result = await client.fail(first.lease, "upstream 500")
        assert result.parked is False
        second = await _granted(client, "live:fail")
        result = await client.fail(second.lease, "upstream 500 again")
        assert result.parked is True  # COORDINATOR_MAX_ATTEMPTS=2
        parked = await client.claim("live:fail", 5000)
        assert isinstance(parked, NotGranted) and parked.reason == "failed"
        info = await client.inspect("live:fail")
        assert (info.state, info.attempts, info.last_reason) == ("failed", 2, "upstream 500 again")


async def test_job_completion_ratio(real_coordinator: RealCoordinator) -> None:
    async with _client(real_coordinator) as client:
        leases = []
        for shard in range(4):
            outcome = await client.claim(
                f"live:job:{shard}", 5000, job_id="live-job", shards_total=4
            )
            assert isinstance(outcome, Granted)
            leases.append(outcome.lease)
        ratios = [(await client.complete(lease)).completion_ratio for lease in leases]
    assert ratios == [0.25, 0.5, 0.75, 1.0]


async def test_inspect_odd_keys(real_coordinator: RealCoordinator) -> None:
    key = "node/a b:60:0:100:w?x#y:%2F"
    async with _client(real_coordinator) as client:
        granted = await _granted(client, key)
        info = await client.inspect(key)
    assert (info.key, info.state, info.token) == (key, "held", granted.lease.token)


async def test_wrong_token_is_an_auth_error(real_coordinator: RealCoordinator) -> None:
    async with CoordinatorClient(real_coordinator.url, token="not-the-token") as client:
        with pytest.raises(CoordinatorAuthError):
            await client.claim("live:auth", 5000)
        await client.health()  # /healthz is public


async def test_hold_lease_renews_on_the_service(real_coordinator: RealCoordinator) -> None:
    async with _client(real_coordinator) as client:
        async with hold_lease(client, "live:hold", 300) as held:
            deadline = time.monotonic() + 5
            while held.renewals < 3:
                assert time.monotonic() < deadline, "no renewals"
                await asyncio.sleep(0.01)
            # Three renewals of a 300 ms lease: it would have expired twice over without them.
            assert (await client.inspect("live:hold")).state == "held"
        assert (await client.inspect("live:hold")).state == "completed"


async def test_hold_lease_lost_when_another_worker_takes_over(
    real_coordinator: RealCoordinator,
) -> None:
    async with _client(real_coordinator) as a, _client(real_coordinator, worker_id="b") as b:
        granted = await _granted(a, "live:takeover", lease_ms=200)
        deadline = time.monotonic() + 5
        while (await b.inspect("live:takeover")).state == "held":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await _granted(b, "live:takeover", lease_ms=10_000)
        started = time.monotonic()
        with pytest.raises(LeaseLost):
            # A holder that was paused past its lease: the first renewal finds it stale.
            async with hold_lease(a, granted, 200, renew_interval=0.05):
                await asyncio.sleep(30)
        assert time.monotonic() - started < 2.0


async def test_rate_limit_is_retried_after_retry_after(
    rate_limited_coordinator: RealCoordinator,
) -> None:
    # Limit 3 requests/s per worker: the 4th and later wait for the next window.
    async with _client(rate_limited_coordinator) as client:
        started = time.monotonic()
        for shard in range(7):
            await _granted(client, f"live:rl:{shard}")
        # 7 requests at 3 per one-second window span at least three windows.
        assert time.monotonic() - started > 1.0
    async with _client(rate_limited_coordinator, worker_id="impatient", rate_limit_attempts=1) as c:
        with pytest.raises(CoordinatorUnavailable, match="429"):
            for shard in range(10):
                await _granted(c, f"live:rl:impatient:{shard}")


async def test_prod_factory_returns_the_client_when_healthy(
    real_coordinator: RealCoordinator,
) -> None:
    settings = SeamlessConfig(
        profile="prod",
        coordinator_url=real_coordinator.url,
        coordinator_token=real_coordinator.token,  # type: ignore[arg-type]
        health_backoff_seconds=0.1,
    )
    coordinator = await create_coordinator(settings, env={})
    try:
        assert isinstance(coordinator, CoordinatorClient)
        assert isinstance(await coordinator.claim("live:factory", 5000), Granted)
    finally:
        await coordinator.aclose()
