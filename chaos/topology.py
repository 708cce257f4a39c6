"""The chaos topology: every hop the suite can break runs through toxiproxy.

    SDK worker ─┬─ proxy "coord-<worker>" ─┐
    SDK worker ─┴─ proxy "coord-<worker>" ─┴─> coordinator ── proxy "redis" ──> Redis
    SDK ── proxy "questdb-pg" (PostgreSQL wire) ─┐
    SDK ── proxy "questdb-ilp" (ILP over HTTP) ──┴─> QuestDB
    SDK ── proxy "minio" ──> MinIO

Each worker has a proxy of its own in front of the coordinator, so a scenario can cut or
slow one worker while the others carry on. The topology owns a Redis of its own (so a
scenario may restart it empty without touching other suites) and a coordinator process on
fixed ports (so it can be killed and restarted behind the same proxy). QuestDB and MinIO are
the session's servers, reached through proxies created on first use; every proxy is deleted
on close. Invariant checks read through `direct_*` connections that bypass the proxies.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.protocol import LeaseInfo
from seamless.data.coverage import Range
from seamless.data.coverage import from_timestamps as ranges_from_timestamps
from seamless.data.storage.questdb import QuestDBBarStore

from chaos.invariants import AuditedCoordinator, LeaseAudit
from chaos.toxiproxy import Proxy, ToxiproxyAPI
from lab.coordinator_process import CoordinatorServer
from lab.servers import MinioServer, QuestDBServer, RedisServer

ServerLookup = Callable[[str], Any]


class ChaosTopology:
    def __init__(
        self,
        api: ToxiproxyAPI,
        servers: ServerLookup,
        *,
        sweep_interval_ms: int = 100,
        max_attempts: int = 6,
    ) -> None:
        """``servers(name)`` returns a session server fixture (``questdb_server``,
        ``minio_server``), so only the servers a scenario uses are started."""
        self.api = api
        self._servers = servers
        self.tag = secrets.token_hex(3)
        self.audit = LeaseAudit()
        self._proxies: dict[str, Proxy] = {}
        self._clients: list[AuditedCoordinator] = []
        self.redis = RedisServer().start()
        self.redis_proxy = self._proxy("redis", f"{self.redis.host}:{self.redis.port}")
        self.coordinator = CoordinatorServer(
            f"redis://{self.redis_proxy.address}/0",
            key_prefix=f"chaos-{self.tag}:",
            max_attempts=max_attempts,
            extra_env={"COORDINATOR_SWEEP_INTERVAL_MS": str(sweep_interval_ms)},
        )
        self.coordinator.start()
        # Metrics survive a coordinator restart here (the process's own start from zero).
        self.metrics_before_restart: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    # --- proxies ------------------------------------------------------------------------

    def _proxy(self, role: str, upstream: str) -> Proxy:
        proxy = self.api.create_proxy(f"chaos-{self.tag}-{role}", upstream)
        self._proxies[role] = proxy
        return proxy

    def worker_proxy(self, worker: str) -> Proxy:
        """The proxy between `worker` and the coordinator (created on first use)."""
        role = f"coord-{worker}"
        if role not in self._proxies:
            self._proxy(role, f"{self.coordinator.host}:{self.coordinator.port}")
        return self._proxies[role]

    def client(
        self, worker: str, *, timeout: float = 2.0, audited: bool = True
    ) -> AuditedCoordinator:
        """A coordinator client for `worker`, through its own proxy, recorded in `audit`."""
        inner = CoordinatorClient(
            self.worker_proxy(worker).url(),
            token=self.coordinator.token,
            worker_id=worker,
            timeout=timeout,
        )
        client = AuditedCoordinator(inner, self.audit if audited else LeaseAudit(), worker)
        self._clients.append(client)
        return client

    def direct_client(self, worker: str = "observer", *, timeout: float = 2.0) -> CoordinatorClient:
        """A client that bypasses toxiproxy (for checks, not for the scenario's workers)."""
        return CoordinatorClient(
            self.coordinator.url, token=self.coordinator.token, worker_id=worker, timeout=timeout
        )

    @property
    def questdb(self) -> QuestDBServer:
        server: QuestDBServer = self._servers("questdb_server")
        return server

    @property
    def minio(self) -> MinioServer:
        server: MinioServer = self._servers("minio_server")
        return server

    def questdb_pg_proxy(self) -> Proxy:
        if "questdb-pg" not in self._proxies:
            self._proxy("questdb-pg", f"{self.questdb.host}:{self.questdb.pg_port}")
        return self._proxies["questdb-pg"]

    def questdb_ilp_proxy(self) -> Proxy:
        """ILP over HTTP (QuestDB's HTTP port), the transport the bar store writes with."""
        if "questdb-ilp" not in self._proxies:
            self._proxy("questdb-ilp", f"{self.questdb.host}:{self.questdb.http_port}")
        return self._proxies["questdb-ilp"]

    def minio_proxy(self) -> Proxy:
        if "minio" not in self._proxies:
            self._proxy("minio", f"{self.minio.host}:{self.minio.port}")
        return self._proxies["minio"]

    def proxy_log_events(self, proxy: Proxy, message: str) -> int:
        """How many times toxiproxy logged `message` (e.g. "Accepted client", "Source
        terminated") for `proxy`: what a scenario waits on to know a connection was cut."""
        log_path = self._servers("toxiproxy_server").log_path
        count = 0
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("name") == proxy.name and entry.get("message") == message:
                count += 1
        return count

    # --- storage ------------------------------------------------------------------------

    def table_prefix(self, scenario: str) -> str:
        return f"chaos_{scenario}_{self.tag}_"

    def store(self, table_prefix: str, *, ilp_options: str = "") -> QuestDBBarStore:
        """A QuestDB bar store whose reads and writes both go through toxiproxy."""
        q = self.questdb
        pg = self.questdb_pg_proxy()
        ilp = self.questdb_ilp_proxy()
        return QuestDBBarStore(
            pg_dsn=f"postgresql://{q.user}:{q.password}@{pg.address}/{q.database}",
            ilp_conf=f"http::addr={ilp.address};{ilp_options}",
            table_prefix=table_prefix,
        )

    def direct_store(self, table_prefix: str) -> QuestDBBarStore:
        q = self.questdb
        return QuestDBBarStore(pg_dsn=q.pg_dsn, ilp_conf=q.ilp_http_conf, table_prefix=table_prefix)

    def stored_rows(self, table_prefix: str) -> list[tuple[str, int, int]]:
        """Every (node_id, interval, ts) row in the scenario's table, read directly."""
        return stored_rows(self.questdb.pg_dsn, table_prefix)

    def stored_token_rows(self, table_prefix: str) -> list[tuple[str, int, int, int | None]]:
        """Every (node_id, interval, ts, lease_token) row, read directly."""
        return stored_token_rows(self.questdb.pg_dsn, table_prefix)

    def stored_coverage(self, table_prefix: str) -> dict[tuple[str, int], list[Range]]:
        return coverage_of(self.stored_rows(table_prefix))

    # --- the coordinator ----------------------------------------------------------------

    def coordinator_metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The coordinator's samples (direct scrape), plus what earlier processes counted."""
        return metric_samples(self.coordinator.metrics_url, self.metrics_before_restart)

    def coordinator_counter(self, name: str, **labels: str) -> float:
        """Sum of counter `name` over the samples whose labels include `labels`."""
        return counter_in(self.coordinator_metrics(), name, **labels)

    def kill_coordinator(self) -> None:
        """SIGKILL, as a crash would; counters seen so far are kept for the invariants."""
        with suppress(httpx.HTTPError):
            self.metrics_before_restart = self.coordinator_metrics()
        self.coordinator.kill()

    def start_coordinator(self) -> None:
        """Start again on the same ports (behind the same proxies)."""
        self.coordinator.start()

    async def inspect(self, keys: list[str]) -> dict[str, LeaseInfo]:
        async with self.direct_client() as client:
            return {key: await client.inspect(key) for key in keys}

    # --- teardown -----------------------------------------------------------------------

    async def aclose_clients(self) -> None:
        for client in self._clients:
            with suppress(Exception):
                await client.aclose()
        self._clients.clear()

    def close(self) -> None:
        for proxy in self._proxies.values():
            with suppress(Exception):
                proxy.delete()
        self._proxies.clear()
        self.coordinator.cleanup()
        self.redis.cleanup()


# --- reads that bypass every proxy (also used against the deployed containers) -------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def table_rows(
    pg_dsn: str, table: str, columns: str, where: str = "", params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """`SELECT columns FROM table [WHERE where]` over QuestDB's PostgreSQL wire; no rows
    when the table does not exist (yet)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT count() FROM tables() WHERE table_name = %s", (table,)
        ).fetchone()
        if not exists or not exists[0]:
            return []
        query = f"SELECT {columns} FROM {table}" + (f" WHERE {where}" if where else "")
        return list(conn.execute(query, params).fetchall())


def _bars_rows(pg_dsn: str, table_prefix: str, columns: str) -> list[tuple[Any, ...]]:
    return table_rows(pg_dsn, f"{table_prefix}bars", columns)


def stored_rows(pg_dsn: str, table_prefix: str) -> list[tuple[str, int, int]]:
    """Every (node_id, interval, ts) row of `<table_prefix>bars`."""
    rows = _bars_rows(pg_dsn, table_prefix, "node_id, bar_interval, cast(ts AS LONG)")
    return [(str(n), int(i), int(ts) // 1_000_000) for n, i, ts in rows]


def stored_token_rows(pg_dsn: str, table_prefix: str) -> list[tuple[str, int, int, int | None]]:
    """Every (node_id, interval, ts, lease_token) row. Since fencing reached storage a bar
    may be stored once per holder that wrote it; reads serve the highest token's."""
    rows = _bars_rows(pg_dsn, table_prefix, "node_id, bar_interval, cast(ts AS LONG), lease_token")
    return [
        (str(n), int(i), int(ts) // 1_000_000, None if t is None else int(t))
        for n, i, ts, t in rows
    ]


def coverage_of(rows: list[tuple[str, int, int]]) -> dict[tuple[str, int], list[Range]]:
    by_series: dict[tuple[str, int], list[int]] = {}
    for node_id, interval, ts in rows:
        by_series.setdefault((node_id, interval), []).append(ts)
    return {
        (node_id, interval): ranges_from_timestamps(sorted(set(stamps)), interval)
        for (node_id, interval), stamps in by_series.items()
    }


def metric_samples(metrics_url: str, before: Samples | None = None) -> Samples:
    """A Prometheus scrape as {(name, labels): value}, counters added to `before`'s."""
    text = httpx.get(metrics_url, timeout=5.0).text
    samples = dict(before or {})
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if sample.name.endswith("_total") or sample.name.endswith("_count"):
                samples[key] = samples.get(key, 0.0) + sample.value
            else:
                samples[key] = sample.value
    return samples


def counter_in(samples: Samples, name: str, **labels: str) -> float:
    """Sum of `name` over the samples whose labels include `labels`."""
    total = 0.0
    for (sample, sample_labels), value in samples.items():
        have = dict(sample_labels)
        if sample == name and all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total
