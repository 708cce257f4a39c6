"""Retries are idempotent (issue 17, item 5): a request whose reply was lost, sent again,
answers as the first did. A claim repeated with its request id by the same client and
holder gets the same lease; a complete or fail repeated with the token that finished the
key answers 200 again; a replay changes nothing. Every other repeat is still refused.
Against the session's real Redis through the real app."""

from __future__ import annotations

import pytest
from coordinator_testkit import ALL_REDIS_TOPOLOGIES, AS_OTHER_CLIENT, LiveApp, wait_until

pytestmark = [pytest.mark.integration, ALL_REDIS_TOPOLOGIES]

KEY = "retry-node:60:0:3600::"


async def _claim(live: LiveApp, key: str = KEY, **extra: object) -> dict:
    body = {"key": key, "lease_ms": 30_000, **extra}
    response = await live.client.post("/v1/leases/claim", json=body)
    assert response.status_code == 200, response.text
    granted: dict = response.json()
    return granted


async def _lease_record(live: LiveApp, key: str = KEY) -> tuple[dict, float | None]:
    """The lease hash and its score in the held index: what a replay must leave alone."""
    record = await live.redis.hgetall(live.keys.lease(key))
    return record, await live.redis.zscore(live.held_index(key), key)


async def _post(live: LiveApp, route: str, body: dict, **kwargs: object) -> tuple[int, dict]:
    response = await live.client.post(f"/v1/leases/{route}", json=body, **kwargs)  # type: ignore[arg-type]
    return response.status_code, response.json()


# --- claim ------------------------------------------------------------------------------------


async def test_a_claim_repeated_with_its_request_id_gets_the_same_lease(live: LiveApp) -> None:
    first = await _claim(live, request_id="a1b2c3")
    before = await _lease_record(live)
    again = await _claim(live, request_id="a1b2c3")
    assert again == first  # same token, lease end, holder and ratio
    assert await _lease_record(live) == before  # not a new attempt, nothing extended
    assert before[0]["attempts"] == "1"
    assert live.metric("seamless_coordinator_claims_total", {"outcome": "granted"}) == 1.0
    assert live.metric("seamless_coordinator_replays_total", {"operation": "claim"}) == 1.0


@pytest.mark.parametrize(
    ("retry", "headers"),
    [
        ({"request_id": "another-id"}, {}),  # another claim of the same worker
        ({}, {}),  # a claim naming no request id
        ({"request_id": "r-1", "holder": "other-worker"}, {}),  # another holder
        ({"request_id": "r-1"}, AS_OTHER_CLIENT),  # another client reusing the id
    ],
    ids=["other-request-id", "no-request-id", "other-holder", "other-client"],
)
async def test_any_other_claim_of_a_live_lease_is_held(
    live: LiveApp, retry: dict, headers: dict
) -> None:
    first = (await _claim(live, request_id="r-1"))["lease"]
    before = await _lease_record(live)
    status, body = await _post(
        live, "claim", {"key": KEY, "lease_ms": 1000, **retry}, headers=headers
    )
    assert status == 409, body
    assert body["reason"] == "held" and body["lease_until_ms"] == first["lease_until_ms"]
    assert await _lease_record(live) == before


async def test_a_request_id_does_not_outlive_its_lease(live: LiveApp) -> None:
    first = (await _claim(live, lease_ms=100, request_id="r-2"))["lease"]

    async def ran_out() -> bool:
        return (await live.client.get(f"/v1/leases/{KEY}")).json()["state"] == "free"

    await wait_until(ran_out, what="the 100 ms lease to run out")
    # The lease it named is gone: the same id now makes a new attempt with a new token.
    second = (await _claim(live, request_id="r-2"))["lease"]
    assert second["token"] > first["token"]
    assert (await live.client.get(f"/v1/leases/{KEY}")).json()["attempts"] == 2


@pytest.mark.parametrize(
    "request_id", ["", "x" * 65, "has space", "semi;colon", "new\nline", "ünï"]
)
async def test_a_bad_request_id_is_422_naming_the_field(live: LiveApp, request_id: str) -> None:
    status, body = await _post(
        live, "claim", {"key": KEY, "lease_ms": 1000, "request_id": request_id}
    )
    assert status == 422, body
    assert body["field"] == "request_id"
    assert [k async for k in live.redis.scan_iter(match=f"{live.settings.key_prefix}*")] == []


# --- complete ---------------------------------------------------------------------------------


async def test_a_repeated_complete_answers_as_the_first(live: LiveApp) -> None:
    lease = (await _claim(live))["lease"]
    body = {"key": KEY, "token": lease["token"]}
    first = await _post(live, "complete", body)
    assert first == (200, {"completion_ratio": 1.0, "job_id": None, "parked": False,
                           "attempts": 1})  # fmt: skip
    before = await _lease_record(live)
    assert await _post(live, "complete", body) == first
    assert await _post(live, "complete", {**body, "token": str(lease["token"])}) == first
    assert await _lease_record(live) == before
    completed = {"node_id": "retry-node", "interval": "60"}
    assert live.metric("seamless_coordinator_completed_total", completed) == 1.0
    assert live.metric("seamless_coordinator_replays_total", {"operation": "complete"}) == 2.0


async def test_a_repeated_complete_reports_the_jobs_current_ratio(live: LiveApp) -> None:
    keys = [f"retry-job:60:{i}:{i + 1}::" for i in range(2)]
    leases = [(await _claim(live, k, job_id="job-r", shards_total=2))["lease"] for k in keys]
    first = await _post(live, "complete", {"key": keys[0], "token": leases[0]["token"]})
    assert first[1]["completion_ratio"] == 0.5
    await _post(live, "complete", {"key": keys[1], "token": leases[1]["token"]})
    status, again = await _post(live, "complete", {"key": keys[0], "token": leases[0]["token"]})
    assert status == 200 and again == {**first[1], "completion_ratio": 1.0}


async def test_a_complete_repeated_by_another_client_is_forbidden(live: LiveApp) -> None:
    lease = (await _claim(live))["lease"]
    body = {"key": KEY, "token": lease["token"]}
    assert (await _post(live, "complete", body))[0] == 200
    before = await _lease_record(live)
    status, refused = await _post(live, "complete", body, headers=AS_OTHER_CLIENT)
    assert status == 403 and refused["error"] == "not_owner"  # the lease is worker-a's
    assert refused["completion_ratio"] == 1.0
    assert await _lease_record(live) == before


async def test_an_old_token_after_another_holder_took_over_is_still_stale(
    live: LiveApp,
) -> None:
    old = (await _claim(live, lease_ms=100))["lease"]

    async def ran_out() -> bool:
        return (await live.client.get(f"/v1/leases/{KEY}")).json()["state"] == "free"

    await wait_until(ran_out, what="the 100 ms lease to run out")
    new = (await _claim(live))["lease"]
    status, refused = await _post(live, "complete", {"key": KEY, "token": old["token"]})
    assert status == 409 and refused["reason"] == "stale"
    assert refused["completion_ratio"] == 0.0  # the new holder has not finished
    # Once the new holder completed, the old token is still not a repeat of that complete.
    assert (await _post(live, "complete", {"key": KEY, "token": new["token"]}))[0] == 200
    status, refused = await _post(live, "complete", {"key": KEY, "token": old["token"]})
    assert status == 409 and refused["reason"] == "stale"
    assert refused["completion_ratio"] == 1.0


# --- fail -------------------------------------------------------------------------------------


async def test_a_repeated_fail_answers_as_the_first(live: LiveApp) -> None:
    lease = (await _claim(live))["lease"]
    body = {"key": KEY, "token": lease["token"], "reason": "upstream 503"}
    first = await _post(live, "fail", body)
    assert first == (200, {"completion_ratio": 0.0, "job_id": None, "parked": False,
                           "attempts": 1})  # fmt: skip
    before = await _lease_record(live)
    assert await _post(live, "fail", {**body, "reason": "a later reason"}) == first
    assert await _lease_record(live) == before  # the first reason stays
    assert live.metric("seamless_coordinator_failed_total", {
        "node_id": "retry-node", "interval": "60"}) == 1.0  # fmt: skip
    assert live.metric("seamless_coordinator_replays_total", {"operation": "fail"}) == 1.0


async def test_a_repeated_fail_that_parked_the_key_answers_parked_again(live: LiveApp) -> None:
    for attempt in (1, 2, 3):  # max_attempts is 3 in these apps
        lease = (await _claim(live))["lease"]
        body = {"key": KEY, "token": lease["token"], "reason": f"boom {attempt}"}
        first = await _post(live, "fail", body)
        assert first[0] == 200 and first[1]["parked"] is (attempt == 3)
        assert await _post(live, "fail", body) == first
    listing = (await live.client.get("/v1/leases", params={"state": "failed"})).json()
    assert [info["key"] for info in listing["leases"]] == [KEY]
    assert live.metric("seamless_coordinator_parked_total", {
        "node_id": "retry-node", "interval": "60"}) == 1.0  # fmt: skip


async def test_a_fail_repeated_after_a_new_claim_or_recovery_is_stale(live: LiveApp) -> None:
    lease = (await _claim(live))["lease"]
    body = {"key": KEY, "token": lease["token"], "reason": "x"}
    assert (await _post(live, "fail", body))[0] == 200
    status, refused = await _post(live, "fail", body, headers=AS_OTHER_CLIENT)
    assert status == 403 and refused["error"] == "not_owner"  # the fail was worker-a's

    again = (await _claim(live))["lease"]  # a new lease: the old fail is history
    status, refused = await _post(live, "fail", body)
    assert status == 409 and refused["reason"] == "stale"

    retry = {"key": KEY, "token": again["token"], "reason": "y"}
    assert (await _post(live, "fail", retry))[0] == 200
    recovered = await live.client.post("/v1/leases/recover", json={"key": KEY})
    assert recovered.status_code == 200, recovered.text
    status, refused = await _post(live, "fail", retry)  # same token, but the key was recovered
    assert status == 409 and refused["reason"] == "stale"


async def test_a_complete_after_a_fail_with_the_same_token_is_stale(live: LiveApp) -> None:
    lease = (await _claim(live))["lease"]
    assert (await _post(live, "fail", {"key": KEY, "token": lease["token"]}))[0] == 200
    status, refused = await _post(live, "complete", {"key": KEY, "token": lease["token"]})
    assert status == 409 and refused["reason"] == "stale"
    status, refused = await _post(live, "renew", {"key": KEY, "token": lease["token"],
                                                  "lease_ms": 1000})  # fmt: skip
    assert status == 409 and refused["reason"] == "stale"
