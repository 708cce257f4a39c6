"""Prod start-up health check against a real HTTP server: bounded attempts, the backoff
between them, the per-attempt timeout, and failure ending start-up (never a stub)."""

from __future__ import annotations

import time

import pytest
from sdk_client_servers import CoordinatorDouble
from seamless.config.model import SeamlessConfig
from seamless.coordination.client import CoordinatorClient
from seamless.errors import CoordinatorStartupError
from seamless.factory import create_coordinator

pytestmark = pytest.mark.integration

BACKOFF = 0.25


def _prod(double: CoordinatorDouble, **overrides: object) -> SeamlessConfig:
    values: dict[str, object] = {
        "profile": "prod",
        "coordinator_url": double.url,
        "coordinator_token": double.token,
        "health_attempts": 3,
        "health_backoff_seconds": BACKOFF,
        "health_timeout_seconds": 1.0,
        **overrides,
    }
    return SeamlessConfig.model_validate(values)


async def test_recovers_on_the_third_attempt(double: CoordinatorDouble) -> None:
    double.fault("healthz", "status:503", times=2)
    started = time.monotonic()
    coordinator = await create_coordinator(_prod(double), env={})
    elapsed = time.monotonic() - started
    try:
        assert isinstance(coordinator, CoordinatorClient)
    finally:
        await coordinator.aclose()
    assert double.stats()["hits"]["healthz"] == 3
    assert 2 * BACKOFF <= elapsed < 2 * BACKOFF + 2.0


async def test_gives_up_after_the_bounded_attempts(double: CoordinatorDouble) -> None:
    double.fault("healthz", "status:503", times=100)
    started = time.monotonic()
    with pytest.raises(CoordinatorStartupError, match="3 attempt"):
        await create_coordinator(_prod(double), env={})
    elapsed = time.monotonic() - started
    assert double.stats()["hits"]["healthz"] == 3
    assert 2 * BACKOFF <= elapsed < 2 * BACKOFF + 2.0


async def test_each_attempt_has_its_own_timeout(double: CoordinatorDouble) -> None:
    double.fault("healthz", "sleep:3", times=2)
    settings = _prod(
        double, health_attempts=2, health_backoff_seconds=0.0, health_timeout_seconds=0.3
    )
    started = time.monotonic()
    with pytest.raises(CoordinatorStartupError):
        await create_coordinator(settings, env={})
    elapsed = time.monotonic() - started
    assert double.stats()["hits"]["healthz"] == 2
    assert 0.6 <= elapsed < 2.5  # two 0.3 s timeouts, not two 3 s waits


async def test_dev_with_a_healthy_url_gets_the_real_client(double: CoordinatorDouble) -> None:
    settings = _prod(double, profile="dev")
    coordinator = await create_coordinator(settings, env={})
    try:
        assert isinstance(coordinator, CoordinatorClient)
        assert double.stats()["hits"]["healthz"] == 1
    finally:
        await coordinator.aclose()


async def test_unhealthy_body_counts_as_failure(double: CoordinatorDouble) -> None:
    double.fault("healthz", "wrong_shape", times=5)
    with pytest.raises(CoordinatorStartupError, match="unhealthy"):
        await create_coordinator(_prod(double, health_backoff_seconds=0.0), env={})
