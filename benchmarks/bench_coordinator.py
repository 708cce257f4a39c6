"""Coordinator throughput and latency: claim+complete cycles through the HTTP service vs the
same two Lua scripts called directly with redis-py EVALSHA, in one run, on one real Redis.

    .venv/bin/python benchmarks/bench_coordinator.py [--cycles 20000] [--workers 32]
        [--replicas 1] [--log-level warning]
    .venv/bin/python benchmarks/bench_coordinator.py --matrix [--cycles 10000]

`--matrix` (issue 17 item 8): one Redis and a 3-primary Redis Cluster started side by side,
the service with 2 and 4 replicas on each, every figure as a ratio against raw EVALSHA on
the one Redis measured in the same run. Each worker's keys name a node of their own
(``bench-<worker>:...``), so the keys spread over the partitions, hence the cluster's slots.

Each worker runs claim -> complete cycles on fresh keys, one at a time, and records the
cycle's wall time. The HTTP side uses a minimal keep-alive HTTP/1.1 client on raw asyncio
streams (one connection per worker) so the load generator, which shares the machine's
cores with the service and Redis, costs as little CPU as possible; httpx would spend more
time in the client than the service spends serving. Targets (issue 4): p50 ratio <= 3x,
>= 2,000 cycles/s, p99 <= 5 ms; issue 17 item 11: p50 ratio <= 1.5x, throughput >= 0.8x
direct, with two replicas.

Every process shares the machine's cores, so throughput is CPU-bound: the run also reports
each role's CPU time per cycle (client, service replicas, Redis; from /proc/<pid>/stat over
the measured runs only), whose ratio between the two paths is the ceiling of their
throughput ratio, and how much CPU the machine's other processes took meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seamless.coordinator import redis_dsn
from seamless.coordinator.store import Finished, Granted, KeySpace, LeaseStore

from lab.coordinator_process import CoordinatorServer
from lab.redis_topologies import RedisClusterSet
from lab.servers import RedisServer

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of process `pid` so far (all its threads)."""
    # Fields after the command name's closing ')': state is the 3rd field, utime the 14th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (all cores, all processes)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICKS


class CpuMeter:
    """CPU seconds per role (a role is one or more processes) over one measured run, so a
    path's cost reads as CPU per cycle, which a busy machine does not skew the way it skews
    wall-clock throughput. What the machine's other processes used meanwhile is kept too."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self.roles = roles
        self._start: dict[str, float] = {}
        self._machine = 0.0
        self._wall = 0.0
        self.used: dict[str, float] = {}
        self.others = 0.0  # cores' worth of CPU used by other processes during the run

    def _now(self) -> dict[str, float]:
        return {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.roles.items()}

    def start(self) -> None:
        self._start = self._now()
        self._machine, self._wall = machine_busy_seconds(), time.perf_counter()

    def stop(self) -> None:
        end = self._now()
        self.used = {role: end[role] - self._start[role] for role in self.roles}
        machine = machine_busy_seconds() - self._machine
        wall = time.perf_counter() - self._wall
        self.others = max(0.0, machine - sum(self.used.values())) / wall


@dataclass
class Result:
    name: str
    cycles: int
    seconds: float
    latencies_ms: list[float]
    meter: CpuMeter | None = None

    def cpu_us(self, role: str) -> float:
        """Microseconds of CPU per cycle spent by `role`."""
        assert self.meter is not None
        return self.meter.used.get(role, 0.0) / self.cycles * 1e6

    @property
    def cpu_total_us(self) -> float:
        assert self.meter is not None
        return sum(self.meter.used.values()) / self.cycles * 1e6

    @property
    def rate(self) -> float:
        return self.cycles / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.name:<28} {self.rate:>9.0f} cycles/s   p50 {self.pct(0.50):6.2f} ms   "
            f"p99 {self.pct(0.99):6.2f} ms   mean {statistics.fmean(self.latencies_ms):6.2f} ms"
        )


async def run_workers(
    name: str,
    workers: int,
    cycles: int,
    cycle: Callable[[int, int], Awaitable[None]],
    meter: CpuMeter | None = None,
) -> Result:
    per_worker = cycles // workers
    latencies: list[float] = []

    async def worker(w: int) -> None:
        for i in range(per_worker):
            started = time.perf_counter()
            await cycle(w, i)
            latencies.append((time.perf_counter() - started) * 1000)

    if meter is not None:
        meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    seconds = time.perf_counter() - started
    if meter is not None:
        meter.stop()
    return Result(name, per_worker * workers, seconds, latencies, meter)


CLIENT, REDIS, REPLICAS = "client / load generator", "redis-server", "service replicas"


async def baseline(
    redis_url: str,
    workers: int,
    cycles: int,
    run_id: str,
    name: str = "redis-py EVALSHA (direct)",
    redis_pids: list[int] | None = None,
) -> Result:
    target = redis_dsn.parse(redis_url)
    options = {"max_connections": workers * 2} if target.topology == "single" else {}
    # No client-side retries, as the service has none: a retried script would run twice.
    redis = redis_dsn.connect(target, decode_responses=True, retry=Retry(NoBackoff(), 0), **options)
    store = LeaseStore(redis, prefix=f"bench-direct-{run_id}:", max_attempts=6)
    await store.load_scripts()

    async def cycle(w: int, i: int) -> None:
        key = f"bench-{w}:60:{i}::"
        granted = await store.claim(key, 30_000, holder=f"w{w}", client="bench")
        assert isinstance(granted, Granted), granted
        done = await store.complete(key, granted.token, client="bench", identity="bench:")
        assert isinstance(done, Finished), done

    await run_workers("warm-up", workers, min(cycles, 2000), cycle)
    store.keys = KeySpace(f"bench-direct-{run_id}-measured:", store.keys.partitions)
    meter = CpuMeter({CLIENT: [os.getpid()], REDIS: redis_pids or []})
    result = await run_workers(name, workers, cycles, cycle, meter)
    await redis.aclose()
    return result


class RawHttp:
    """One keep-alive HTTP/1.1 connection; enough protocol for this benchmark only."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: c\r\n" + self.auth
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def through_service(
    servers: list[CoordinatorServer],
    workers: int,
    cycles: int,
    run_id: str,
    on: str = "",
    redis_pids: list[int] | None = None,
) -> Result:
    connections = [
        RawHttp(servers[w % len(servers)].host, servers[w % len(servers)].port, servers[0].token)
        for w in range(workers)
    ]
    await asyncio.gather(*(c.connect() for c in connections))
    tag = {"value": f"warm-{run_id}"}

    async def cycle(w: int, i: int) -> None:
        conn = connections[w]
        key = f"bench-{w}:60:{i}:{tag['value']}:"
        status, body = await conn.post(
            "/v1/leases/claim", b'{"key":"' + key.encode() + b'","lease_ms":30000}'
        )
        assert status == 200, body
        token = json.loads(body)["lease"]["token"]
        status, body = await conn.post(
            "/v1/leases/complete",
            b'{"key":"' + key.encode() + b'","token":"' + str(token).encode() + b'"}',
        )
        assert status == 200, body

    await run_workers("warm-up", workers, min(cycles, 2000), cycle)
    tag["value"] = run_id
    label = f"HTTP service x{len(servers)} replica" + ("s" if len(servers) > 1 else "") + on
    meter = CpuMeter(
        {CLIENT: [os.getpid()], REPLICAS: [s.pid for s in servers], REDIS: redis_pids or []}
    )
    result = await run_workers(label, workers, cycles, cycle, meter)
    for c in connections:
        c.close()
    return result


def _service(
    redis_url: str, run_id: str, replicas: int, log_level: str, tokens: dict[str, str]
) -> list[CoordinatorServer]:
    return [
        CoordinatorServer(
            redis_url, key_prefix=f"bench-http-{run_id}:", log_level=log_level, tokens=tokens
        )
        for _ in range(replicas)
    ]


def matrix(args: argparse.Namespace) -> None:
    """One Redis vs the 3-primary cluster, 2 and 4 service replicas, ratios against raw."""
    run_id = secrets.token_hex(3)
    tokens = {"bench": secrets.token_urlsafe(24)}
    rows: list[Result] = []
    with RedisServer() as single, RedisClusterSet() as cluster:
        single_pids = [single.pid]
        cluster_pids = [member.pid for member in cluster.members]
        raw = uvloop.run(
            baseline(
                single.url,
                args.workers,
                args.cycles,
                run_id,
                "raw EVALSHA, one Redis",
                single_pids,
            )
        )
        rows.append(raw)
        rows.append(
            uvloop.run(
                baseline(
                    cluster.url,
                    args.workers,
                    args.cycles,
                    run_id + "c",
                    "raw EVALSHA, cluster",
                    cluster_pids,
                )
            )
        )
        for name, url, pids in (
            ("one Redis", single.url, single_pids),
            ("cluster", cluster.url, cluster_pids),
        ):
            for replicas in (2, 4):
                servers = _service(
                    url, f"{run_id}{name[0]}{replicas}", replicas, args.log_level, tokens
                )
                try:
                    for server in servers:
                        server.start()
                    rows.append(
                        uvloop.run(
                            through_service(
                                servers,
                                args.workers,
                                args.cycles,
                                f"{run_id}{name[0]}{replicas}",
                                f", {name}",
                                pids,
                            )
                        )
                    )
                finally:
                    for server in servers:
                        server.cleanup()
    print(f"coordinator matrix: {args.cycles} claim+complete cycles per row, {args.workers} "
          f"workers, {os.cpu_count()} cores shared by client, services and Redis")  # fmt: skip
    print(f"{'':<40} {'cycles/s':>9} {'x raw':>6} {'p50 ms':>7} {'x raw':>6} {'p99 ms':>7} "
          f"{'CPU us/cycle':>12}")  # fmt: skip
    for row in rows:
        print(
            f"{row.name:<40} {row.rate:>9.0f} {row.rate / raw.rate:>6.2f} "
            f"{row.pct(0.5):>7.2f} {row.pct(0.5) / raw.pct(0.5):>6.2f} {row.pct(0.99):>7.2f} "
            f"{row.cpu_total_us:>12.0f}"
        )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def print_cpu(direct: Result, service: Result, replicas: int) -> None:
    """CPU per cycle by role: what limits throughput when every process shares the cores."""
    assert direct.meter is not None and service.meter is not None
    print("CPU per cycle, us (user+system, /proc/<pid>/stat, measured runs only):")
    print(f"  {'role':<26} {'direct':>8} {'service':>8}")
    for role in (CLIENT, REPLICAS, REDIS):
        shown = f"{role} (x{replicas})" if role == REPLICAS else role
        print(f"  {shown:<26} {direct.cpu_us(role):>8.0f} {service.cpu_us(role):>8.0f}")
    print(f"  {'total':<26} {direct.cpu_total_us:>8.0f} {service.cpu_total_us:>8.0f}")
    # CPU-bound on shared cores: throughput is about cores / CPU per cycle, so the ratio of
    # the two paths' CPU per cycle is the ceiling of the service/direct throughput ratio.
    print(f"  throughput ceiling service/direct (direct CPU / service CPU per cycle): "
          f"{direct.cpu_total_us / service.cpu_total_us:.2f}x")  # fmt: skip
    print(f"  cores busy with other processes meanwhile: direct {direct.meter.others:.2f}, "
          f"service {service.meter.others:.2f} (of {os.cpu_count()})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--matrix", action="store_true", help="one Redis vs cluster, 2 and 4 replicas"
    )
    args = parser.parse_args()
    if args.matrix:
        matrix(args)
        return
    run_id = secrets.token_hex(3)

    tokens = {"bench": secrets.token_urlsafe(24)}
    with RedisServer() as redis_server:
        servers = _service(redis_server.url, run_id, args.replicas, args.log_level, tokens)
        try:
            for server in servers:
                server.start()
            pids = [redis_server.pid]
            direct = uvloop.run(
                baseline(redis_server.url, args.workers, args.cycles, run_id, redis_pids=pids)
            )
            service = uvloop.run(
                through_service(servers, args.workers, args.cycles, run_id, redis_pids=pids)
            )
            # One worker: the latency of a cycle with no queueing behind other workers.
            solo_direct = uvloop.run(baseline(redis_server.url, 1, 2000, run_id + "s"))
            solo_service = uvloop.run(through_service(servers, 1, 2000, run_id + "s"))
        finally:
            for server in servers:
                server.cleanup()

    print(f"coordinator benchmark: {args.cycles} claim+complete cycles, {args.workers} "
          f"concurrent workers, 1 Redis, {os.cpu_count()} cores (client, service and Redis "
          f"share them)")  # fmt: skip
    print(direct.line())
    print(service.line())
    p50_ratio = service.pct(0.5) / direct.pct(0.5)
    p99_ratio = service.pct(0.99) / direct.pct(0.99)
    rate_ratio = service.rate / direct.rate
    print(f"ratios service/direct: p50 {p50_ratio:.2f}x  p99 {p99_ratio:.2f}x  "
          f"throughput service/direct {rate_ratio:.2f}x")  # fmt: skip
    print_cpu(direct, service, len(servers))
    print("one worker (no queueing):")
    print("  " + solo_direct.line())
    print("  " + solo_service.line())
    print(f"  ratio p50 {solo_service.pct(0.5) / solo_direct.pct(0.5):.2f}x")
    # Closed loop: mean latency = workers / throughput (Little's law), so p99 <= 5 ms at 32
    # workers needs >= 6,400 cycles/s; both latency targets are reported as measured.
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    verdicts = {
        "p50 ratio <= 1.5x": p50_ratio <= 1.5,
        "throughput >= 0.8x direct": rate_ratio >= 0.8,
        "p50 ratio <= 3x": p50_ratio <= 3.0,
        ">= 2,000 cycles/s": service.rate >= 2000,
        "p99 <= 5 ms": service.pct(0.99) <= 5.0,
    }
    for target, met in verdicts.items():
        print(f"target {target:<26} {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
