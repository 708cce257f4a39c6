"""REDIS_DSN: one Redis, a Redis Cluster, or a primary found through Redis Sentinel.

Forms (``rediss`` for TLS in each):

- ``redis://[user:password@]host:port/db`` or ``unix:///path/to/socket``: one server;
- ``redis+cluster://[user:password@]host:port[,host:port...]``: any reachable nodes of a
  cluster, which tells the client the rest; the cluster's only database is 0;
- ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``: the
  sentinels, and the name of the primary they watch. The user and password are the data
  nodes'; sentinels that require their own take ``?sentinel_username=...&sentinel_password=``.

`parse` checks a DSN and says what is wrong with it; `connect` builds the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.sentinel import Sentinel

from seamless.errors import RedisDsnError

Topology = Literal["single", "cluster", "sentinel"]
SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
FORMS = (
    "redis://[user:password@]host:port/db, rediss://..., unix:///path, "
    "redis+cluster://[user:password@]host:port[,host:port...] or "
    "redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]"
)
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class RedisTarget:
    topology: Topology
    dsn: str
    tls: bool
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def _nodes(netloc: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in netloc.split(","):
        host, sep, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not host:
            raise RedisDsnError(f"node {item.strip()!r} has no host:port form")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisDsnError(f"node {item.strip()!r} has no port 1-65535")
        nodes.append((host, int(port)))
    return tuple(nodes)


def parse(dsn: str) -> RedisTarget:
    dsn = dsn.strip()
    scheme = dsn.partition("://")[0].lower() if "://" in dsn else ""
    if scheme not in SCHEMES:
        raise RedisDsnError(f"scheme {scheme or '(none)'!r} is not one of {', '.join(SCHEMES)}")
    topology, tls = SCHEMES[scheme]
    if topology == "single":
        # One server: redis-py's own parser is the reference, ours only checks a host.
        if scheme != "unix" and not urlsplit(dsn).hostname:
            raise RedisDsnError("the DSN names no host")
        return RedisTarget("single", dsn, tls)
    rest = dsn.partition("://")[2]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not hosts:
        raise RedisDsnError("the DSN names no host")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    allowed = _SENTINEL_OPTIONS if topology == "sentinel" else ()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(allowed) or "none"
        raise RedisDsnError(f"unknown option(s) {', '.join(unknown)} (known: {known})")
    parts = [p for p in path.split("/") if p]
    service, db = "", 0
    if topology == "cluster":
        if parts and parts != ["0"]:
            raise RedisDsnError("a Redis Cluster has only database 0: drop the path")
    else:
        if not parts or len(parts) > 2:
            raise RedisDsnError("a Sentinel DSN needs /service or /service/db after the sentinels")
        service = unquote(parts[0])
        if len(parts) == 2:
            if not parts[1].isdigit():
                raise RedisDsnError(f"database {parts[1]!r} is not a number")
            db = int(parts[1])
    return RedisTarget(
        topology,
        dsn,
        tls,
        nodes=_nodes(hosts),
        service=service,
        db=db,
        username=unquote(user) or None,
        password=unquote(password) or None,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def connect(target: RedisTarget, **options: Any) -> Redis | RedisCluster:
    """A client for `target`; `options` are redis-py connection options common to all
    (timeouts, retry, decode_responses, ...)."""
    if target.topology == "single":
        return Redis.from_url(target.dsn, **options)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.topology == "cluster":
        options.pop("max_connections", None)  # per node in a cluster: keep redis-py's default
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            ssl=target.tls,
            **auth,
            **options,
        )
    sentinel_options = {
        k: v
        for k, v in options.items()
        if k in ("socket_timeout", "socket_connect_timeout", "decode_responses")
    }
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes),
        sentinel_kwargs={
            **sentinel_options,
            "username": target.sentinel_username,
            "password": target.sentinel_password,
            "ssl": target.tls,
        },
    )
    primary: Redis = sentinels.master_for(
        target.service, db=target.db, ssl=target.tls, **auth, **options
    )
    return primary
