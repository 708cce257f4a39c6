"""The local data plane: every server the runtime needs, started together and stopped
together, in the order their dependencies need."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from lab.servers import LocalServer, MinioServer, QuestDBServer, RedisServer, ToxiproxyServer


@dataclass
class DataPlane:
    redis: RedisServer = field(default_factory=RedisServer)
    questdb: QuestDBServer = field(default_factory=QuestDBServer)
    minio: MinioServer = field(default_factory=MinioServer)
    toxiproxy: ToxiproxyServer = field(default_factory=ToxiproxyServer)
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def servers(self) -> list[LocalServer]:
        return [self.redis, self.questdb, self.minio, self.toxiproxy]

    def endpoints(self) -> dict[str, dict[str, str]]:
        """What a person (or a client) needs to reach each server."""
        return {
            "redis": {"url": self.redis.url},
            "questdb": {
                "pg_dsn": self.questdb.pg_dsn,
                "http": self.questdb.http_url,
                "ilp": f"{self.questdb.host}:{self.questdb.ilp_port}",
            },
            "minio": {"endpoint": self.minio.endpoint, "access_key": self.minio.access_key},
            "toxiproxy": {"api": self.toxiproxy.api_url},
        }

    def health(self) -> dict[str, bool]:
        return {server.name: server.ready() for server in self.servers}

    def __enter__(self) -> Self:
        with ExitStack() as stack:
            for server in self.servers:
                stack.enter_context(server)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
