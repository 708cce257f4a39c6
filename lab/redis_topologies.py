"""Redis beyond one server, as local processes: a 3-primary Redis Cluster, and a primary with
two replicas watched by three Sentinels. Debian's redis-server and redis-sentinel, no
persistence, loopback ports, one temporary directory each.

Both are ready only when the real thing says so: the cluster when every node reports
``cluster_state:ok`` with all 16384 slots assigned, the Sentinel set when every sentinel
names the primary and knows both replicas, and each replica's link to the primary is up.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.servers import LOOPBACK, RedisServer, ServerStartError, free_port, tool_path

CLUSTER_SLOTS = 16384
SENTINEL_SERVICE = "seamless"


def _client(port: int) -> redis.Redis:
    return redis.Redis(
        host=LOOPBACK,
        port=port,
        socket_timeout=1,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def _wait(what: str, check: Callable[[], bool], deadline_s: float, logs: Callable[[], str]) -> None:
    """Poll `check()` until it is true or `deadline_s` passes; the error carries `logs()`."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise ServerStartError(f"{what} within {deadline_s:.0f} s{logs()}")


class RedisNode(RedisServer):
    """One redis-server with extra arguments (cluster mode, replica of another)."""

    def __init__(self, workdir: Path, extra: list[str]) -> None:
        self.extra = extra
        super().__init__(workdir)

    def command(self) -> list[str]:
        return super().command() + self.extra


class ClusterNode(RedisServer):
    """One redis-server in cluster mode, its cluster bus on a port of its own (the default,
    port + 10000, may be out of range for a high free port)."""

    name = "redis-cluster-node"

    def pick_ports(self) -> None:
        super().pick_ports()
        self.bus_port = free_port()

    def command(self) -> list[str]:
        return [
            *super().command(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.workdir / "nodes.conf"),
            "--cluster-node-timeout", "2000",
            "--cluster-port", str(self.bus_port),
        ]  # fmt: skip


class _Group:
    """Servers started together and stopped together, under one temporary directory."""

    name = "group"

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"seamless-{self.name}-"))
        self.members: list[RedisServer] = []

    def _dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir()
        return path

    def logs(self) -> str:
        return "".join(f"\n--- {m.workdir.name}:\n{m.log_tail(10)}" for m in self.members)

    def cleanup(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def start(self) -> Self:
        raise NotImplementedError


class RedisClusterSet(_Group):
    """Three primaries, the slots split evenly, no replicas."""

    name = "redis-cluster"
    primaries = 3

    def start(self) -> Self:
        nodes = [ClusterNode(self._dir(f"node-{i}")) for i in range(self.primaries)]
        for node in nodes:
            self.members.append(node.start())
        per_node = CLUSTER_SLOTS // self.primaries
        first = nodes[0]
        for i, node in enumerate(nodes):
            low = i * per_node
            high = CLUSTER_SLOTS - 1 if i == self.primaries - 1 else low + per_node - 1
            with _client(node.port) as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
                if node is not first:
                    client.execute_command("CLUSTER", "MEET", LOOPBACK, first.port, first.bus_port)
        _wait("the cluster did not reach cluster_state:ok", self._healthy, 30, self.logs)
        return self

    def _healthy(self) -> bool:
        for node in self.members:
            with _client(node.port) as client:
                info = client.execute_command("CLUSTER", "INFO")
                text = info if isinstance(info, str) else str(info)
                if "cluster_state:ok" not in text or "cluster_known_nodes:3" not in text:
                    return False
        return True

    @property
    def url(self) -> str:
        nodes = ",".join(f"{LOOPBACK}:{node.port}" for node in self.members)
        return f"redis+cluster://{nodes}"


class SentinelServer(RedisServer):
    """redis-sentinel watching one primary (its config file is its own: sentinels rewrite
    it as they learn the topology)."""

    name = "redis-sentinel"

    def __init__(self, workdir: Path, primary_port: int, quorum: int) -> None:
        self.primary_port = primary_port
        self.quorum = quorum
        super().__init__(workdir)

    def command(self) -> list[str]:
        conf = self.workdir / "sentinel.conf"
        conf.write_text(
            f"bind {self.host}\nport {self.port}\nprotected-mode no\ndir {self.workdir}\n"
            f"sentinel monitor {SENTINEL_SERVICE} {self.host} {self.primary_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
            f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
        )
        return [str(tool_path("bin", "redis-sentinel")), str(conf)]


class RedisSentinelSet(_Group):
    """A primary, two replicas, three sentinels (quorum 2). `kill_primary` crashes the
    primary; `wait_promoted` waits until the sentinels name a replica instead. Two replicas,
    so that a coordinator waiting for one replica's acknowledgement (min_replicas 1) stays
    available once a replica has become the primary."""

    name = "redis-sentinel-set"
    sentinel_count = 3
    quorum = 2

    def start(self) -> Self:
        # A replica syncs at once instead of after the default 5 s diskless-sync delay.
        sync_now = ["--repl-diskless-sync-delay", "0"]
        self.primary = RedisNode(self._dir("primary"), sync_now)
        self.members.append(self.primary.start())
        self.replicas = []
        for i in range(2):
            replica = RedisNode(
                self._dir(f"replica-{i}"),
                [*sync_now, "--replicaof", LOOPBACK, str(self.primary.port)],
            )
            self.members.append(replica.start())
            self.replicas.append(replica)
        self.sentinels = []
        for i in range(self.sentinel_count):
            sentinel = SentinelServer(self._dir(f"sentinel-{i}"), self.primary.port, self.quorum)
            self.members.append(sentinel.start())
            self.sentinels.append(sentinel)
        _wait("the replica and the sentinels did not see each other", self._healthy, 30, self.logs)
        return self

    def _healthy(self) -> bool:
        for replica in self.replicas:
            with _client(replica.port) as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
        for sentinel in self.sentinels:
            with _client(sentinel.port) as client:
                replicas = client.execute_command("SENTINEL", "REPLICAS", SENTINEL_SERVICE)
                others = client.execute_command("SENTINEL", "SENTINELS", SENTINEL_SERVICE)
                if len(replicas) < len(self.replicas) or len(others) < self.sentinel_count - 1:
                    return False
        return True

    def primary_port(self) -> int | None:
        """The port the first answering sentinel names as the primary's."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            try:
                with _client(sentinel.port) as client:
                    _, port = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE
                    )
                    return int(port)
            except redis.RedisError:
                continue
        return None

    def kill_primary(self) -> None:
        """SIGKILL the primary, as a host crash would."""
        self.primary.kill()

    def wait_promoted(self, deadline_s: float) -> None:
        """Until the sentinels name a replica as primary and it says it is one."""

        def promoted() -> bool:
            port = self.primary_port()
            if port not in [r.port for r in self.replicas]:
                return False
            with _client(port) as client:
                return bool(client.info("replication").get("role") == "master")

        _wait("the replica was not promoted", promoted, deadline_s, self.logs)

    @property
    def url(self) -> str:
        nodes = ",".join(f"{LOOPBACK}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{nodes}/{SENTINEL_SERVICE}/0"
