"""The HTTP edge: bearer auth, malformed input (4xx naming the field, lease untouched),
rate limiting per worker, and health when Redis is away."""

from __future__ import annotations

from typing import Any

import pytest
from coordinator_testkit import OTHER_TOKEN, AppFactory, LiveApp

from lab.servers import free_port

pytestmark = pytest.mark.integration

KEY = "ada-1h:3600:0:86400::"


async def test_every_lease_route_needs_a_valid_bearer_token(live: LiveApp) -> None:
    requests: list[tuple[str, str, Any]] = [
        ("POST", "/v1/leases/claim", {"key": KEY, "lease_ms": 1000}),
        ("POST", "/v1/leases/complete", {"key": KEY, "token": 1}),
        ("POST", "/v1/leases/fail", {"key": KEY, "token": 1}),
        ("POST", "/v1/leases/renew", {"key": KEY, "token": 1, "lease_ms": 1000}),
        ("POST", "/v1/leases/recover", {"key": KEY}),
        ("GET", f"/v1/leases/{KEY}", None),
        ("GET", "/v1/leases", None),
        ("GET", "/no/such/route", None),
    ]
    refused = (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong-token-123456789"},
        {"Authorization": f"Basic {OTHER_TOKEN}"},
    )
    for headers in refused:
        for method, path, body in requests:
            response = await live.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
    info = (await live.client.get(f"/v1/leases/{KEY}")).json()
    assert info["state"] == "free" and info["token"] is None  # nothing was claimed

    for path in ("/healthz", "/readyz", "/metrics"):
        response = await live.client.get(path, headers={"Authorization": ""})
        assert response.status_code == 200, path
    assert (await live.client.get("/healthz")).json() == {"status": "ok", "reason": None}


async def test_a_second_client_token_is_its_own_identity(live: LiveApp) -> None:
    response = await live.client.post(
        "/v1/leases/claim",
        json={"key": KEY, "lease_ms": 5000},
        headers={"Authorization": f"Bearer {OTHER_TOKEN}", "X-Worker-Id": "host-7/pid-42"},
    )
    assert response.status_code == 200
    assert response.json()["lease"]["holder"] == "host-7/pid-42"
    held = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 5000})
    assert held.status_code == 409


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("claim", {"key": KEY, "lease_ms": -5}, "lease_ms"),
    ("claim", {"key": KEY, "lease_ms": 10**12}, "lease_ms"),
    ("claim", {"key": KEY, "lease_ms": "soon"}, "lease_ms"),
    ("claim", {"key": KEY}, "lease_ms"),
    ("claim", {"key": "x" * 513, "lease_ms": 1000}, "key"),
    ("claim", {"key": "bad\nkey", "lease_ms": 1000}, "key"),
    ("claim", {"key": "bad\x00key", "lease_ms": 1000}, "key"),
    ("claim", {"key": "", "lease_ms": 1000}, "key"),
    ("claim", {"key": KEY, "lease_ms": 1000, "shards_total": 0}, "shards_total"),
    ("complete", {"key": KEY, "token": "abc"}, "token"),
    ("complete", {"key": KEY, "token": -1}, "token"),
    ("complete", {"key": KEY}, "token"),
    ("fail", {"key": KEY, "token": 1.5}, "token"),
    ("fail", {"key": KEY, "token": 1, "reason": "r" * 5000}, "reason"),
    ("renew", {"key": KEY, "token": 1, "lease_ms": 0}, "lease_ms"),
    ("recover", {"key": KEY, "force": "yes"}, "force"),
    ("claim", [1, 2, 3], "body"),
]


async def test_malformed_input_names_the_field_and_changes_no_lease(live: LiveApp) -> None:
    granted = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 60_000})
    before = (await live.client.get(f"/v1/leases/{KEY}")).json()
    for operation, body, field in BAD_BODIES:
        response = await live.client.post(f"/v1/leases/{operation}", json=body)
        assert response.status_code == 422, (operation, body, response.text)
        error = response.json()
        assert error["error"] == "invalid_request"
        assert error["field"] == field, (operation, body, error)
    raw = await live.client.post(
        "/v1/leases/complete",
        content=b'{"key": "' + KEY.encode() + b'", "token": ',
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 422 and raw.json()["field"] == "body"
    not_utf8 = await live.client.post(
        "/v1/leases/fail", content=b"\xff\xfe\x00", headers={"Content-Type": "application/json"}
    )
    assert not_utf8.status_code == 422
    huge = await live.client.post(
        "/v1/leases/claim", content=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert huge.status_code == 413 and huge.json()["field"] == "body"
    unknown = await live.client.get("/v1/nothing")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    wrong_method = await live.client.delete("/v1/leases/claim")
    assert wrong_method.status_code == 405
    bad_query = await live.client.get("/v1/leases", params={"state": "everything"})
    assert bad_query.status_code == 422 and bad_query.json()["field"] == "state"

    assert (await live.client.get(f"/v1/leases/{KEY}")).json() == before
    assert before["token"] == granted.json()["lease"]["token"]


async def test_rate_limit_per_worker_answers_429_with_retry_after(make_app: AppFactory) -> None:
    async with make_app(rate_limit=5) as live:
        statuses = []
        for i in range(20):
            response = await live.client.post(
                "/v1/leases/claim", json={"key": f"rl:{i}", "lease_ms": 1000}
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"] == "rate_limited"
                assert not await live.redis.exists(
                    live.keys.lease(f"rl:{i}")
                )  # a limited claim changed nothing
        assert statuses.count(200) <= 10  # 20 requests span at most two 1-second windows
        assert statuses.count(429) >= 10
        # Another worker identity has its own budget.
        other = await live.client.post(
            "/v1/leases/claim",
            json={"key": "rl:other", "lease_ms": 1000},
            headers={"Authorization": f"Bearer {OTHER_TOKEN}", "X-Worker-Id": "fresh"},
        )
        assert other.status_code == 200
        assert live.metric("seamless_coordinator_rate_limited_total") >= 10


async def test_redis_unreachable_is_503_with_a_reason(make_app: AppFactory) -> None:
    async with make_app(redis_dsn=f"redis://127.0.0.1:{free_port()}/0") as live:
        health = await live.client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["reason"].startswith("redis")
        ready = await live.client.get("/readyz")
        assert ready.status_code == 503
        claim = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 1000})
        assert claim.status_code == 503 and claim.json()["error"] == "unavailable"
