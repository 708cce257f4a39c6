"""Lease semantics against real Redis through the real app: claim/held/complete/completed,
expiry and re-claim, stale tokens, fail/park/recover, jobs; on one Redis, the Redis Cluster
and the Sentinel set. (Fencing across a Redis that lost its data: its own module.)"""

from __future__ import annotations

import pytest
import structlog
from coordinator_testkit import ALL_REDIS_TOPOLOGIES, AS_OPERATOR, AppFactory, LiveApp, wait_until

pytestmark = [pytest.mark.integration, ALL_REDIS_TOPOLOGIES]

KEY = "btc-1m:60:0:3600:world-1:"


async def claim(live: LiveApp, key: str = KEY, lease_ms: int = 30_000, **extra: object) -> dict:
    response = await live.client.post(
        "/v1/leases/claim", json={"key": key, "lease_ms": lease_ms, **extra}
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def inspect(live: LiveApp, key: str = KEY) -> dict:
    response = await live.client.get(f"/v1/leases/{key}")
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_claim_held_complete_completed(live: LiveApp) -> None:
    granted = await claim(live)
    lease = granted["lease"]
    assert lease["key"] == KEY and lease["token"] > 0
    assert granted["completion_ratio"] == 0.0

    held = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 1000})
    assert held.status_code == 409
    assert held.json()["reason"] == "held"
    assert held.json()["lease_until_ms"] == lease["lease_until_ms"]

    info = await inspect(live)
    assert info["state"] == "held" and info["token"] == lease["token"]
    assert info["holder"] == "worker-a" and info["attempts"] == 1

    done = await live.client.post(
        "/v1/leases/complete", json={"key": KEY, "token": str(lease["token"])}
    )
    assert done.status_code == 200, done.text
    assert done.json()["completion_ratio"] == 1.0

    again = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 1000})
    assert again.status_code == 409
    assert again.json()["reason"] == "completed"
    assert (await inspect(live))["state"] == "completed"
    assert live.metric("backfill_completion_ratio", {
        "node_id": "btc-1m", "interval": "60", "lease_key": KEY
    }) == 1.0  # fmt: skip


async def test_expired_lease_is_reclaimed_with_a_higher_token(live: LiveApp) -> None:
    first = (await claim(live, lease_ms=100))["lease"]

    async def lease_ran_out() -> bool:
        return (await inspect(live))["state"] == "free"

    with structlog.testing.capture_logs() as logs:
        await wait_until(lease_ran_out, what="the 100 ms lease to run out")
        second = (await claim(live, lease_ms=30_000))["lease"]

        async def counted() -> bool:
            labels = {"node_id": "btc-1m", "interval": "60"}
            return live.metric("seamless_coordinator_lease_expiries_total", labels) == 1.0

        await wait_until(counted, what="the expiry to be counted")

    assert second["token"] > first["token"]
    expiries = [e for e in logs if e["event"] == "lease.expired"]
    assert len(expiries) == 1, logs
    assert expiries[0]["holder"] == "worker-a" and expiries[0]["token"] == first["token"]

    stale = await live.client.post(
        "/v1/leases/complete", json={"key": KEY, "token": first["token"]}
    )
    assert stale.status_code == 409 and stale.json()["reason"] == "stale"
    info = await inspect(live)
    assert info["state"] == "held" and info["token"] == second["token"]
    assert info["attempts"] == 2
    # Counted once, although the sweeper and the claim both saw the expiry.
    assert live.metric("seamless_coordinator_lease_expiries_total", {
        "node_id": "btc-1m", "interval": "60"}) == 1.0  # fmt: skip


async def test_expired_keys_are_listed_until_reclaimed(live: LiveApp) -> None:
    key = "eth-1m:60:0:60::"
    await claim(live, key, lease_ms=100)

    async def listed() -> bool:
        response = await live.client.get("/v1/leases", params={"state": "expired"})
        return key in [lease["key"] for lease in response.json()["leases"]]

    await wait_until(listed, what="the expired key to be listed")
    await claim(live, key)
    assert not await listed()


@pytest.mark.parametrize("operation", ["complete", "renew", "fail"])
async def test_stale_tokens_are_refused_and_change_nothing(live: LiveApp, operation: str) -> None:
    lease = (await claim(live))["lease"]
    before = await inspect(live)
    for token in (lease["token"] - 1, lease["token"] + 1, 1):
        body = {"key": KEY, "token": token, "lease_ms": 60_000, "reason": "x"}
        response = await live.client.post(f"/v1/leases/{operation}", json=body)
        assert response.status_code == 409, response.text
        assert response.json()["reason"] == "stale"
    assert await inspect(live) == before
    assert live.metric("seamless_coordinator_stale_rejections_total", {
        "operation": operation}) == 3.0  # fmt: skip


async def test_operations_on_a_never_claimed_key_are_stale(live: LiveApp) -> None:
    for operation in ("complete", "renew", "fail"):
        body = {"key": "never", "token": 5, "lease_ms": 1000}
        response = await live.client.post(f"/v1/leases/{operation}", json=body)
        assert response.status_code == 409 and response.json()["reason"] == "stale"
    assert (await inspect(live, "never"))["state"] == "free"


async def test_renew_extends_the_live_lease(live: LiveApp) -> None:
    lease = (await claim(live, lease_ms=1000))["lease"]
    renewed = await live.client.post(
        "/v1/leases/renew", json={"key": KEY, "token": lease["token"], "lease_ms": 60_000}
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["lease"]["token"] == lease["token"]
    assert renewed.json()["lease"]["lease_until_ms"] >= lease["lease_until_ms"] + 58_000
    assert (await inspect(live))["lease_until_ms"] == renewed.json()["lease"]["lease_until_ms"]


async def test_renew_after_expiry_is_stale(live: LiveApp) -> None:
    lease = (await claim(live, lease_ms=100))["lease"]

    async def ran_out() -> bool:
        return (await inspect(live))["state"] == "free"

    await wait_until(ran_out, what="the lease to run out")
    response = await live.client.post(
        "/v1/leases/renew", json={"key": KEY, "token": lease["token"], "lease_ms": 1000}
    )
    assert response.status_code == 409 and response.json()["reason"] == "stale"


async def test_fail_makes_the_key_claimable_then_parks_it(live: LiveApp) -> None:
    # max_attempts is 3 in these apps.
    tokens = []
    for attempt in (1, 2, 3):
        lease = (await claim(live))["lease"]
        tokens.append(lease["token"])
        failed = await live.client.post(
            "/v1/leases/fail",
            json={"key": KEY, "token": lease["token"], "reason": f"upstream 503 #{attempt}"},
        )
        assert failed.status_code == 200, failed.text
        assert failed.json()["completion_ratio"] == 0.0
        assert failed.json()["attempts"] == attempt
        assert failed.json()["parked"] is (attempt == 3)
    assert tokens == sorted(set(tokens))

    refused = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 1000})
    assert refused.status_code == 409 and refused.json()["reason"] == "failed"
    info = await inspect(live)
    assert info["state"] == "failed" and info["last_reason"] == "upstream 503 #3"

    listing = (await live.client.get("/v1/leases", params={"state": "failed"})).json()
    assert [lease["key"] for lease in listing["leases"]] == [KEY]
    assert live.metric("seamless_coordinator_parked_total", {
        "node_id": "btc-1m", "interval": "60"}) == 1.0  # fmt: skip

    recovered = await live.client.post("/v1/leases/recover", json={"key": KEY})
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["previous_state"] == "failed"
    assert recovered.json()["lease"]["attempts"] == 0
    fresh = (await claim(live))["lease"]
    assert fresh["token"] > max(tokens)
    listing = (await live.client.get("/v1/leases", params={"state": "failed"})).json()
    assert listing["leases"] == []


async def test_a_lease_that_runs_out_on_the_last_attempt_parks_the_key(
    make_app: AppFactory,
) -> None:
    async with make_app(max_attempts=1) as live:
        await claim(live, lease_ms=100)

        async def ran_out() -> bool:
            return (await inspect(live))["state"] == "free"

        await wait_until(ran_out, what="the lease to run out")
        refused = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 1000})
        assert refused.status_code == 409 and refused.json()["reason"] == "failed"
        assert "expired" in refused.json()["detail"]
        listing = (await live.client.get("/v1/leases", params={"state": "failed"})).json()
        assert [lease["key"] for lease in listing["leases"]] == [KEY]


async def test_recover_refuses_a_live_lease_without_force(live: LiveApp) -> None:
    lease = (await claim(live))["lease"]
    refused = await live.client.post("/v1/leases/recover", json={"key": KEY})
    assert refused.status_code == 409 and refused.json()["reason"] == "held"
    forced = await live.client.post(
        "/v1/leases/recover", json={"key": KEY, "force": True}, headers=AS_OPERATOR
    )
    assert forced.status_code == 200 and forced.json()["previous_state"] == "held"
    stale = await live.client.post(
        "/v1/leases/complete", json={"key": KEY, "token": lease["token"]}
    )
    assert stale.status_code == 409 and stale.json()["reason"] == "stale"
    assert (await claim(live))["lease"]["token"] > lease["token"]


async def test_job_completion_ratio_counts_completed_shards(live: LiveApp) -> None:
    keys = [f"sol-1m:60:{i * 60}:{i * 60 + 59}::" for i in range(4)]
    ratios = []
    for key in keys[:2]:
        lease = (await claim(live, key, job_id="job-7", shards_total=4))["lease"]
        done = await live.client.post(
            "/v1/leases/complete", json={"key": key, "token": lease["token"]}
        )
        ratios.append(done.json()["completion_ratio"])
    assert ratios == [0.25, 0.5]
    third = await claim(live, keys[2], job_id="job-7", shards_total=4)
    assert third["completion_ratio"] == 0.5 and third["job_id"] == "job-7"
    assert live.metric("backfill_completion_ratio", {
        "node_id": "sol-1m", "interval": "60", "lease_key": keys[1]}) == 0.5  # fmt: skip


async def test_shard_completed_under_another_job_counts_for_the_claiming_job(
    live: LiveApp,
) -> None:
    # Overlapping fetches align to the same shard keys under different jobs: job B finds
    # job A's shard done, and must still reach 1.0 (else the stuck-lease alert fires).
    shared, own = "eth-1m:60:0:59::", "eth-1m:60:60:119::"
    lease = (await claim(live, shared, job_id="job-a", shards_total=1))["lease"]
    await live.client.post("/v1/leases/complete", json={"key": shared, "token": lease["token"]})

    refused = await live.client.post(
        "/v1/leases/claim",
        json={"key": shared, "lease_ms": 1000, "job_id": "job-b", "shards_total": 2},
    )
    assert refused.status_code == 409
    assert refused.json() == {
        "reason": "completed", "lease_until_ms": None, "detail": None,
        "completion_ratio": 0.5, "job_id": "job-b",
    }  # fmt: skip
    lease = (await claim(live, own, job_id="job-b", shards_total=2))["lease"]
    done = await live.client.post("/v1/leases/complete", json={"key": own, "token": lease["token"]})
    assert done.json()["completion_ratio"] == 1.0
    # A claim naming no job gets QMTL's shape with the key's own ratio (it is done).
    plain = await live.client.post("/v1/leases/claim", json={"key": shared, "lease_ms": 1000})
    assert plain.json() == {
        "reason": "completed", "lease_until_ms": None, "detail": None, "completion_ratio": 1.0
    }  # fmt: skip
