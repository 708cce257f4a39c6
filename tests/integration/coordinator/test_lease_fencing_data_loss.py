"""Fencing tokens stay monotonic when Redis loses its data (a restart without persistence,
FLUSHALL): each test wipes a Redis of its own, through the real app."""

from __future__ import annotations

import pytest
from coordinator_testkit import AppFactory, LiveApp, wait_until

from lab.servers import RedisServer

pytestmark = pytest.mark.integration

KEY = "btc-1m:60:0:3600:world-1:"


async def claim(live: LiveApp) -> dict:
    response = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 30_000})
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def inspect(live: LiveApp) -> dict:
    response = await live.client.get(f"/v1/leases/{KEY}")
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_fencing_tokens_stay_monotonic_when_redis_restarts_empty(
    make_app: AppFactory,
) -> None:
    with RedisServer() as redis_server:  # its own Redis: this test wipes it
        async with make_app(redis_dsn=redis_server.url) as live:
            old = (await claim(live))["lease"]
            redis_server.restart()  # no persistence: every lease is forgotten

            async def healthy() -> bool:
                return (await live.client.get("/healthz")).status_code == 200

            await wait_until(healthy, what="Redis to answer again")
            assert (await inspect(live))["token"] is None

            for operation in ("complete", "renew", "fail"):
                body = {"key": KEY, "token": old["token"], "lease_ms": 1000}
                response = await live.client.post(f"/v1/leases/{operation}", json=body)
                assert response.status_code == 409, response.text
                assert response.json()["reason"] == "stale"

            new = (await claim(live))["lease"]
            assert new["token"] > old["token"]
            stale = await live.client.post(
                "/v1/leases/complete", json={"key": KEY, "token": old["token"]}
            )
            assert stale.status_code == 409 and stale.json()["reason"] == "stale"
            done = await live.client.post(
                "/v1/leases/complete", json={"key": KEY, "token": new["token"]}
            )
            assert done.status_code == 200


async def test_fencing_tokens_stay_monotonic_after_flushall(make_app: AppFactory) -> None:
    with RedisServer() as redis_server:
        async with make_app(redis_dsn=redis_server.url) as live:
            tokens = []
            for _ in range(50):
                tokens.append((await claim(live))["lease"]["token"])
                await live.redis.flushall()
            assert tokens == sorted(set(tokens))
