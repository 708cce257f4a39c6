"""The load target on this machine: Redis, QuestDB and the coordinator as local processes
(the same process wrappers the tests and the lab use), on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lab.coordinator_process import CoordinatorServer
from lab.servers import QuestDBServer, RedisServer
from loadtest.target import LoadTarget


def target_for(coordinator: CoordinatorServer, questdb: QuestDBServer) -> LoadTarget:
    return LoadTarget(
        coordinator_url=coordinator.url,
        coordinator_token=coordinator.token,
        questdb_dsn=questdb.pg_dsn,
        questdb_ilp=questdb.ilp_http_conf,
        redis_dsn=coordinator.redis_url,
    )


@contextmanager
def local_plane() -> Iterator[LoadTarget]:
    """Start what a load run needs, yield its target, stop everything on exit."""
    with (
        RedisServer() as redis,
        QuestDBServer() as questdb,
        CoordinatorServer(redis.url, questdb.pg_dsn, log_level="warning") as coordinator,
    ):
        yield target_for(coordinator, questdb)
