"""In-process coordinator apps on the session's real Redis, each under a fresh key prefix.

`make_app` runs on one redis-server unless a module parametrizes `lease_redis` (see
`ALL_REDIS_TOPOLOGIES`): then each test runs on one Redis, on the 3-primary Redis Cluster
and on the Sentinel set (primary + replica, state changes acknowledged by the replica).

Most behaviour is tested through the real ASGI app in this process (fast, and a test can
read the app's own metrics); process-level behaviour (two replicas, QMTL's client over
TCP, schemathesis) uses `CoordinatorServer` processes.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from coordinator_testkit import (
    OPERATOR_TOKEN,
    OTHER_TOKEN,
    REDIS_TOPOLOGIES,
    TOKEN,
    AppFactory,
    LiveApp,
)
from pydantic import SecretStr
from seamless.coordinator import CoordinatorSettings, create_app
from seamless.coordinator.metrics import CoordinatorMetrics

from lab.servers import RedisServer


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("all_redis_topologies") is not None
    if marked and "lease_redis" in metafunc.fixturenames:
        metafunc.parametrize("lease_redis", REDIS_TOPOLOGIES, indirect=True)


@pytest.fixture
def lease_redis(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The Redis DSN of the app under test and the settings that topology needs."""
    topology = getattr(request, "param", "single")
    if topology == "cluster":
        return request.getfixturevalue("redis_cluster").url, {}
    if topology == "sentinel":
        return request.getfixturevalue("redis_sentinel").url, {"redis_min_replicas": 1}
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url, {}


@pytest.fixture
def make_app(lease_redis: tuple[str, dict[str, Any]]) -> AppFactory:
    redis_url, topology_settings = lease_redis

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[LiveApp]:
        settings_kwargs: dict[str, Any] = {
            "redis_dsn": redis_url,
            **topology_settings,
            "tokens": {
                "worker-a": SecretStr(TOKEN),
                "worker-b": SecretStr(OTHER_TOKEN),
                "ops": SecretStr(OPERATOR_TOKEN),
            },
            "roles": {"ops": frozenset({"operator"})},
            "prometheus_port": 0,
            "key_prefix": f"seamless-it-{secrets.token_hex(4)}:",
            "max_attempts": 3,
            "sweep_interval_ms": 100,
            **overrides,
        }
        settings = CoordinatorSettings(**settings_kwargs)
        metrics = CoordinatorMetrics(max_series=settings.max_metric_series)
        app = create_app(settings, metrics=metrics)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://coordinator",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as client,
        ):
            redis = app.state.service.redis
            yield LiveApp(client, metrics, settings, redis, app)

    return factory


@pytest.fixture
async def live(make_app: AppFactory) -> AsyncIterator[LiveApp]:
    async with make_app() as app:
        yield app
