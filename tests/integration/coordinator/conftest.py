"""In-process coordinator apps on the session's real Redis, each under a fresh key prefix.

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
from coordinator_testkit import OPERATOR_TOKEN, OTHER_TOKEN, TOKEN, AppFactory, LiveApp
from pydantic import SecretStr
from seamless.coordinator import CoordinatorSettings, create_app
from seamless.coordinator.metrics import CoordinatorMetrics

from lab.servers import RedisServer


@pytest.fixture
def make_app(redis_server: RedisServer) -> AppFactory:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[LiveApp]:
        settings_kwargs: dict[str, Any] = {
            "redis_dsn": redis_server.url,
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
