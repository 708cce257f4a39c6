"""Fixtures for the SDK client's integration tests (servers in sdk_client_servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sdk_client_servers import CoordinatorDouble, RealCoordinator

from lab.servers import RedisServer


@pytest.fixture(scope="session")
def coordinator_double() -> Iterator[CoordinatorDouble]:
    with CoordinatorDouble() as server:
        yield server


@pytest.fixture
def double(coordinator_double: CoordinatorDouble) -> CoordinatorDouble:
    coordinator_double.reset()
    return coordinator_double


@pytest.fixture(scope="session")
def real_coordinator(redis_server: RedisServer) -> Iterator[RealCoordinator]:
    with RealCoordinator(redis_server.url) as server:
        yield server


@pytest.fixture(scope="session")
def rate_limited_coordinator(redis_server: RedisServer) -> Iterator[RealCoordinator]:
    with RealCoordinator(redis_server.url, COORDINATOR_RATE_LIMIT="3") as server:
        yield server
