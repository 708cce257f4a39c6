"""Every 404/409 body carries `completion_ratio` (the key's real ratio, or null), so QMTL's
client, which reads it with a default of 1.0 after a refused complete, never invents one;
and `/health` is served publicly like `/healthz` (QMTL's operator tool probes it)."""

from __future__ import annotations

import pytest
from coordinator_testkit import OTHER_TOKEN, LiveApp

pytestmark = pytest.mark.integration

KEY = "ratio:60:0:60::"


async def _claim(live: LiveApp, key: str = KEY, **extra: object) -> dict[str, object]:
    response = await live.client.post(
        "/v1/leases/claim", json={"key": key, "lease_ms": 30_000, **extra}
    )
    assert response.status_code == 200, response.text
    lease: dict[str, object] = response.json()["lease"]
    return lease


async def test_a_refused_complete_of_a_key_another_worker_holds_reports_ratio_0(
    live: LiveApp,
) -> None:
    lease = await _claim(live)
    stale = await live.client.post(
        "/v1/leases/complete", json={"key": KEY, "token": int(str(lease["token"])) - 1}
    )
    assert stale.status_code == 409
    body = stale.json()
    assert body["reason"] == "stale" and "completion_ratio" in body
    assert body["completion_ratio"] == 0.0  # still held: not finished


async def test_every_claim_refusal_carries_the_keys_ratio(live: LiveApp) -> None:
    await _claim(live, job_id="job-r", shards_total=4)
    held = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 1000})
    assert held.status_code == 409
    assert held.json()["reason"] == "held" and held.json()["completion_ratio"] == 0.0

    done_key = "ratio:60:60:120::"
    lease = await _claim(live, done_key)
    assert (await live.client.post("/v1/leases/complete", json=lease)).status_code == 200
    completed = await live.client.post("/v1/leases/claim", json={"key": done_key, "lease_ms": 1000})
    assert completed.json() == {
        "reason": "completed", "lease_until_ms": None, "detail": None, "completion_ratio": 1.0,
    }  # fmt: skip
    stale = await live.client.post("/v1/leases/fail", json={"key": done_key, "token": 1})
    assert stale.status_code == 409 and stale.json()["completion_ratio"] == 1.0


async def test_a_key_never_claimed_has_a_null_ratio(live: LiveApp) -> None:
    response = await live.client.post("/v1/leases/complete", json={"key": "never:1", "token": 7})
    assert response.status_code == 409
    body = response.json()
    assert "completion_ratio" in body and body["completion_ratio"] is None


async def test_a_404_body_carries_a_null_ratio(live: LiveApp) -> None:
    response = await live.client.post("/v1/no-such-route", json={})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "completion_ratio" in response.json() and response.json()["completion_ratio"] is None


async def test_health_is_public_and_answers_like_healthz(live: LiveApp) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": f"Bearer {OTHER_TOKEN}"}):
        health = await live.client.get("/health", headers=headers)
        healthz = await live.client.get("/healthz", headers=headers)
        assert health.status_code == healthz.status_code == 200
        assert health.json() == healthz.json() == {"status": "ok", "reason": None}
