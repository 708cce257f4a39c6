"""pytest fixtures for the real servers, registered for the whole repository by the root
conftest.py so that tests/, chaos/ and loadtest/ share one set of processes per session.

Add new shared process fixtures here (not in a directory's conftest.py) so every suite can
reach them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from lab.coordinator_process import CoordinatorServer
from lab.redis_topologies import RedisClusterSet, RedisSentinelSet
from lab.registry import SchemaRegistryServer
from lab.servers import MinioServer, QuestDBServer, RedisServer, ToxiproxyServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterSet]:
    with RedisClusterSet() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinelSet]:
    """A primary/replica/sentinel set shared by the session: never kill its primary (a
    failover test starts its own set)."""
    with RedisSentinelSet() as sentinel_set:
        yield sentinel_set


@pytest.fixture(scope="session")
def questdb_server() -> Iterator[QuestDBServer]:
    with QuestDBServer() as server:
        yield server


@pytest.fixture(scope="session")
def minio_server() -> Iterator[MinioServer]:
    with MinioServer() as server:
        yield server


@pytest.fixture(scope="session")
def toxiproxy_server() -> Iterator[ToxiproxyServer]:
    with ToxiproxyServer() as server:
        yield server


# --- the seamless coordinator (issue 4) ----------------------------------------------------


@pytest.fixture(scope="module")
def coordinator_server(redis_server: RedisServer) -> Iterator[CoordinatorServer]:
    """One coordinator process per test module on the session's Redis, under a key prefix
    of its own so modules never see each other's leases. Tests that need other settings
    (max attempts, rate limit, QuestDB) start their own `CoordinatorServer`."""
    prefix = f"seamless-test-{secrets.token_hex(4)}:"
    server = CoordinatorServer(redis_server.url, key_prefix=prefix)
    with server:
        yield server


# --- the schema registry (issue 14) ------------------------------------------------------


@pytest.fixture(scope="session")
def schema_registry_server() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer() as server:
        yield server
