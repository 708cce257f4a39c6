"""Chaos against the deployed containers: toxiproxy as a container on the partial stack's
network, between the coordinator and Redis and between the coordinator and QuestDB (its
ledger).

    SDK (here) ── 127.0.0.1:8090 ──> coordinator ─┬─ toxiproxy:16379 ──> redis:6379
    SDK ── 127.0.0.1:8812 / :9000 ──> questdb     └─ toxiproxy:18812 ──> questdb:8812

What deviates from the declarations, and why: the coordinator container is recreated once
for this module with `REDIS_DSN` and `QUESTDB_DSN` in its environment (the coordinator
reads the environment over its settings file), each the declared DSN from its
`coordinator.yml` with only host:port changed to the toxiproxy container's listener. Its
image, user, read-only root, secrets volume, network alias, host ports and health check are
the declared ones; Redis and QuestDB are untouched. Routing through the declared `redis` /
`questdb` aliases instead would mean taking those names away from the real containers. The
toxiproxy container (`seamless-local/toxiproxy`, `images/toxiproxy`) joins the stack's
network under the alias `toxiproxy`, its API published on an ephemeral 127.0.0.1 port, and
carries the stack's run label. At the end it is removed and the coordinator is recreated
exactly as declared (and must be healthy again).

Each scenario checks its own expectations and then the chaos suite's invariants
(chaos/invariants.py, through chaos.workload.standard_invariants): every requested range
stored or reported by an explicit error, stored rows unique, no stale token accepted,
finished jobs at completion ratio 1.0, SDK and coordinator counters matching the events.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import Granted
from seamless.coordination.protocol import LeaseInfo
from seamless.data.coverage import Range
from seamless.data.storage.questdb import QuestDBBarStore
from seamless.errors import CoordinatorUnavailable, LeaseLost

from chaos.invariants import AuditedCoordinator, LeaseAudit
from chaos.report import InvariantResult
from chaos.topology import (
    counter_in,
    coverage_of,
    metric_samples,
    stored_rows,
    stored_token_rows,
    table_rows,
)
from chaos.toxiproxy import Proxy, ToxiproxyAPI
from chaos.workload import INTERVAL, WINDOW_BARS, make_worker, shard_span, standard_invariants
from images.build import toxiproxy_ref
from lab.docker_stack import TEST_LABEL, DockerStack

# 1800 s: the first test here may bring up the session's stack (and build its images)
pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]

COORDINATOR = "seamless-coordinator"
ALIAS = "toxiproxy"
API_PORT = 8474
LISTEN = {"redis": 16379, "questdb": 18812}
LEDGER_TABLE = "seamless_backfill_ledger"  # COORDINATOR_LEDGER_PREFIX=seamless_ (declared)


def _declared_dsns(stack: DockerStack) -> dict[str, str]:
    """REDIS_DSN and QUESTDB_DSN as the coordinator's declared settings file has them."""
    for inputs in stack.containers().values():
        for upload in inputs.get("uploads") or []:
            if str(upload["file"]).endswith("/coordinator.yml"):
                doc = yaml.safe_load(upload["content"])
                return {"REDIS_DSN": doc["REDIS_DSN"], "QUESTDB_DSN": doc["QUESTDB_DSN"]}
    raise AssertionError("no coordinator.yml among the declared uploads")


def _via(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    return parts._replace(
        netloc=f"{userinfo}@{ALIAS}:{port}" if userinfo else f"{ALIAS}:{port}"
    ).geturl()


class StackTopology:
    """The chaos suite's `Topology` over the deployed containers: workers are SDK providers
    in this process reaching the coordinator and QuestDB through their published ports;
    checks read the same ports (the proxies sit only behind the coordinator)."""

    def __init__(self, stack: DockerStack, declared: dict[str, Any], api: ToxiproxyAPI) -> None:
        self.stack = stack
        self.api = api
        self.host = declared["outputs"]["hostSdkConfig"]["seamless"]
        self.coordinator_url = str(self.host["coordinator_url"])
        self.metrics_url = "http://127.0.0.1:9102/metrics"  # declared host port of :9102
        self.pg_dsn = str(self.host["questdb_dsn"])
        self.ilp_conf = f"http::addr={urlsplit(self.pg_dsn).hostname}:9000;"
        self.tag = stack.run_id
        self.audit = LeaseAudit()
        self.proxies: dict[str, Proxy] = {}
        self._clients: list[AuditedCoordinator] = []

    # --- chaos.workload.Topology ----------------------------------------------------------

    def client(
        self, worker: str, *, timeout: float = 2.0, audited: bool = True
    ) -> AuditedCoordinator:
        inner = CoordinatorClient(
            self.coordinator_url,
            token=self.host["coordinator_token"],
            worker_id=worker,
            timeout=timeout,
        )
        client = AuditedCoordinator(inner, self.audit if audited else LeaseAudit(), worker)
        self._clients.append(client)
        return client

    def stored_coverage(self, table_prefix: str) -> dict[tuple[str, int], list[Range]]:
        return coverage_of(stored_rows(self.pg_dsn, table_prefix))

    def stored_token_rows(self, table_prefix: str) -> list[tuple[str, int, int, int | None]]:
        return stored_token_rows(self.pg_dsn, table_prefix)

    def coordinator_counter(self, name: str, **labels: str) -> float:
        return counter_in(metric_samples(self.metrics_url), name, **labels)

    async def inspect(self, keys: list[str]) -> dict[str, LeaseInfo]:
        async with CoordinatorClient(
            self.coordinator_url, token=self.host["coordinator_token"], worker_id="observer"
        ) as client:
            return {key: await client.inspect(key) for key in keys}

    # --- the rest -------------------------------------------------------------------------

    def table_prefix(self, scenario: str) -> str:
        return f"engine_chaos_{scenario}_{self.tag}_"

    def store(self, table_prefix: str) -> QuestDBBarStore:
        return QuestDBBarStore(
            pg_dsn=self.pg_dsn, ilp_conf=self.ilp_conf, table_prefix=table_prefix
        )

    def healthz(self) -> tuple[int, str]:
        response = httpx.get(f"{self.coordinator_url}/healthz", timeout=8.0)
        return response.status_code, response.text

    async def aclose_clients(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()


def _toxiproxy_container(stack: DockerStack) -> tuple[str, str]:
    """Start toxiproxy on the coordinator's network; (container id, API URL on the host)."""
    network = stack.name(stack.containers()[COORDINATOR]["networksAdvanced"][0]["name"])
    key = f"{API_PORT}/tcp"
    created = stack.engine.call(
        "POST",
        "/containers/create",
        params={"name": stack.name(ALIAS)},
        json={
            "Image": toxiproxy_ref(),
            "Labels": {TEST_LABEL: stack.run_id},
            "ExposedPorts": {key: {}},
            "HostConfig": {
                "NetworkMode": network,
                "PortBindings": {key: [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                "ReadonlyRootfs": True,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges:true"],
            },
            "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": [ALIAS]}}},
        },
    ).json()
    cid = str(created["Id"])
    stack.engine.call("POST", f"/containers/{cid}/start")
    ports = stack.engine.inspect(cid)["NetworkSettings"]["Ports"][key]
    url = f"http://127.0.0.1:{ports[0]['HostPort']}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/version", timeout=2).raise_for_status()
            return cid, url
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise AssertionError(stack.engine.logs(cid)) from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def topology(stack: DockerStack, declared: dict[str, Any]) -> Iterator[StackTopology]:
    cid, url = _toxiproxy_container(stack)
    api = ToxiproxyAPI(url)
    try:
        dsns = _declared_dsns(stack)
        topo = StackTopology(stack, declared, api)
        for name, port in LISTEN.items():
            upstream = urlsplit(dsns[f"{name.upper()}_DSN"])
            topo.proxies[name] = api.create_proxy(
                name, f"{upstream.hostname}:{upstream.port}", listen=f"0.0.0.0:{port}"
            )
        stack.recreate(
            COORDINATOR,
            env={
                "REDIS_DSN": _via(dsns["REDIS_DSN"], LISTEN["redis"]),
                "QUESTDB_DSN": _via(dsns["QUESTDB_DSN"], LISTEN["questdb"]),
            },
        )
        yield topo
    finally:
        api.close()
        stack.engine.call("DELETE", f"/containers/{cid}", params={"force": 1}, ok=(404,))
        stack.recreate(COORDINATOR)  # as declared again, and healthy


async def _wait_for(condition: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)


def _observe(msg: str) -> None:
    print(f"engine-chaos: {msg}", file=sys.stderr, flush=True)


def _assert_all(checks: list[InvariantResult]) -> None:
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, failed


async def test_redis_silent_behind_the_coordinator(topology: StackTopology) -> None:
    """Coordinator → Redis replies dropped (`timeout` toxic): /healthz answers 503, every
    fetch and a bare claim fail with CoordinatorUnavailable (never "not granted"); a lease
    granted before the cut expires during it, is re-claimed with a higher token after
    recovery and its old holder's completion is refused as stale; afterwards every shard
    completes."""
    topo = topology
    prefix = topo.table_prefix("redis")
    node = f"redis-{topo.tag}"
    workers = [
        make_worker(topo, f"redis-w{i}-{topo.tag}", store=topo.store(prefix), client_timeout=4.0)
        for i in range(2)
    ]
    start, end = shard_span(3)
    early = topo.client(f"redis-early-{topo.tag}", timeout=4.0)
    late = topo.client(f"redis-late-{topo.tag}", timeout=4.0)
    key = f"{node}-lone:{INTERVAL}:0:0::"
    first = await early.claim(key, 1_000)
    assert isinstance(first, Granted), first
    try:
        with topo.proxies["redis"].toxic("timeout", timeout=0):
            cut = time.monotonic()
            status, body = await asyncio.to_thread(topo.healthz)
            outages = await asyncio.gather(*(w.fetch(start, end, node) for w in workers))
            probe: object
            try:
                probe = await late.claim(f"{node}-probe:{INTERVAL}:0:0::", 1_500)
            except CoordinatorUnavailable as exc:
                probe = exc
            await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - cut)))  # `first` expires
        _observe(
            f"redis cut: /healthz {status} {body[:120]}; fetches "
            f"{[type(o.error).__name__ for o in outages]}; bare claim {type(probe).__name__}"
        )
        assert status == 503, (status, body)
        assert all(isinstance(o.error, CoordinatorUnavailable) for o in outages), [
            repr(o.error)[:200] for o in outages
        ]
        assert isinstance(probe, CoordinatorUnavailable), repr(probe)[:300]

        await _wait_for(lambda: topo.healthz()[0] == 200, timeout=20, what="/healthz 200")
        second = await late.claim(key, 10_000)
        assert isinstance(second, Granted), second
        assert second.lease.token > first.lease.token
        with pytest.raises(LeaseLost):
            await early.complete(first.lease)
        await late.complete(second.lease)

        recovered = await asyncio.gather(*(w.fetch(start, end, node) for w in workers))
        for o in recovered:
            assert o.result is not None, repr(o.error)
            assert not o.result.metadata.missing and o.result.frame.height == 3 * WINDOW_BARS
        shards = [f"{node}:{INTERVAL}:{s}:{s + (WINDOW_BARS - 1) * INTERVAL}::" for s in
                  range(start, end, WINDOW_BARS * INTERVAL)]  # fmt: skip
        final = await topo.inspect([*shards, key])
        assert all(info.state == "completed" for info in final.values()), final
        assert final[key].token == second.lease.token
        _observe(
            f"redis recovered: re-claim token {second.lease.token} > {first.lease.token}, "
            f"old holder's complete refused as stale; {len(shards)} shards completed"
        )
        _assert_all(await standard_invariants(topo, workers, prefix))
    finally:
        for w in workers:
            await w.provider.aclose()
            await w.provider.store.aclose()  # type: ignore[attr-defined]
        await topo.aclose_clients()


def _ledger_rows(pg_dsn: str, node: str) -> list[tuple[str, int, str]]:
    rows = table_rows(pg_dsn, LEDGER_TABLE, "lease_key, token, event", "node_id = %s", (node,))
    return [(str(k), int(t), str(e)) for k, t, e in rows]


async def test_questdb_cut_behind_the_coordinator(topology: StackTopology) -> None:
    """Coordinator → QuestDB (its ledger) refused (proxy disabled): leases are never blocked
    (a backfill claims, completes and stores every shard as usual), the ledger's failed
    writes are counted and its rows wait in the buffer; after recovery each completion is in
    the ledger exactly once, and the SDK's bars are stored once."""
    topo = topology
    prefix = topo.table_prefix("ledger")
    node = f"ledger-{topo.tag}"
    worker = make_worker(topo, f"ledger-w-{topo.tag}", store=topo.store(prefix))
    start, end = shard_span(3, first_shard=10)

    def metric(name: str) -> float:
        return topo.coordinator_counter(name)

    errors_before = metric("seamless_coordinator_ledger_write_errors_total")
    written_before = metric("seamless_coordinator_ledger_written_total")
    try:
        with topo.proxies["questdb"].down():
            began = time.monotonic()
            outcome = await worker.fetch(start, end, node)
            took = time.monotonic() - began
            assert outcome.result is not None, repr(outcome.error)
            assert outcome.result.frame.height == 3 * WINDOW_BARS
            assert not outcome.result.metadata.missing
            await _wait_for(
                lambda: metric("seamless_coordinator_ledger_write_errors_total") > errors_before,
                timeout=15,
                what="a failed ledger write counted",
            )
            pending = metric("seamless_coordinator_ledger_pending")
            errors = metric("seamless_coordinator_ledger_write_errors_total") - errors_before
            rows_during = _ledger_rows(topo.pg_dsn, node)
        _observe(
            f"ledger cut: backfill of 3 shards in {took:.2f} s, ledger pending {pending:g}, "
            f"failed ledger writes {errors:g}"
        )
        assert took < 10, f"the backfill took {took:.1f} s with the ledger cut"
        assert pending >= 3, pending
        assert rows_during == [], rows_during
        completes = [
            (e.key, e.token)
            for e in topo.audit.of("complete", "accepted")
            if e.worker == worker.name
        ]
        assert len(completes) == 3, completes

        rows = await _wait_for(
            lambda: len(_ledger_rows(topo.pg_dsn, node)) >= 3 and _ledger_rows(topo.pg_dsn, node),
            timeout=45,
            what="the ledger rows written after recovery",
        )
        await asyncio.sleep(1.0)  # a second write of the batch would show up by now
        rows = _ledger_rows(topo.pg_dsn, node)
        assert Counter(rows) == Counter((k, t, "completed") for k, t in completes), rows
        assert metric("seamless_coordinator_ledger_written_total") >= written_before + 3
        assert metric("seamless_coordinator_ledger_dropped_total") == 0
        _observe(f"ledger after recovery: {len(rows)} row(s), each once: {sorted(rows)}")
        _assert_all(await standard_invariants(topo, [worker], prefix))
    finally:
        await worker.provider.aclose()
        await worker.provider.store.aclose()  # type: ignore[attr-defined]
        await topo.aclose_clients()
