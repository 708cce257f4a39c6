"""The bench load profile's SDK mix driven from plain asyncio: one SDK process, no locust.

`python -m loadtest --profile bench` runs the SDK inside locust's gevent process, beside
the lease users' HTTP client; this script runs the same SDK (`loadtest.sdk_runtime`, built
by `seamless.factory.create_provider`) and the same fetch mix (`loadtest.workload`) with
asyncio alone, so the SDK's own capacity is measured apart from the load generator's. It
starts Redis, QuestDB and the coordinator locally (`loadtest.local.local_plane`), seeds
the series, then runs `--users` closed-loop users at `--rate` fetches/s each (locust's
``constant_throughput``) for `--seconds`, and prints: fetches/s, total p50/p95/p99 by
source, errors, and the CPU seconds each process used during the run (this one, QuestDB,
the coordinator, Redis), with the load average before and after.

With `--lease-users N` a second process (`--lease-process`) drives N lease users (claim /
renew / complete cycles at 10 tasks/s each, like the bench profile's `LeaseUser`) against
the same coordinator, so the coordinator and Redis carry the profile's lease traffic too.

  .venv/bin/python benchmarks/bench_sdk_load.py [--users 48] [--rate 5] [--seconds 30]
      [--lease-users 12] [--cprofile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
from seamless.errors import SeamlessError
from seamless.logging import configure_logging

from loadtest.local import local_plane
from loadtest.sdk_runtime import SdkRuntime
from loadtest.target import LoadTarget
from loadtest.workload import Workload

REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid`, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:13]) / TICKS


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (a server may run under a wrapper)."""
    out = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            out += tree(int(child))
    return out


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


async def lease_user(client: httpx.AsyncClient, prefix: str, rate: float, until: float) -> int:
    """claim / renew / complete at `rate` cycles per second; the cycles it ran."""
    n = 0
    while time.monotonic() < until:
        began = time.monotonic()
        key = f"{prefix}:60:{n}:{n}::"
        n += 1
        r = await client.post("/v1/leases/claim", json={"key": key, "lease_ms": 30_000})
        if r.status_code == 200:
            token = r.json()["lease"]["token"]
            body = {"key": key, "token": token, "lease_ms": 30_000}
            await client.post("/v1/leases/renew", json=body)
            await client.post("/v1/leases/complete", json={"key": key, "token": token})
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - began)))
    return n


async def lease_process(url: str, token: str, users: int, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        until = time.monotonic() + seconds
        done = await asyncio.gather(
            *(lease_user(client, f"lease-{os.getpid()}-{i}", 10.0, until) for i in range(users))
        )
    print(f"lease process: {sum(done)} cycles ({sum(done) / seconds:.0f}/s)", flush=True)


async def drive(
    target: LoadTarget, users: int, rate: float, seconds: float, profile: str | None
) -> None:
    runtime = await SdkRuntime.create(target)
    workload = Workload(run_id=f"{random.getrandbits(32):08x}", series=8)
    await runtime.seed(workload.seed_requests())
    totals: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)

    async def user(until: float) -> None:
        while time.monotonic() < until:
            began = time.monotonic()
            request = workload.next()
            try:
                outcome = await runtime.timed_fetch(request)
            except SeamlessError as exc:
                errors[type(exc).__name__] += 1
            else:
                workload.done(request)
                totals["all"].append(outcome.total_ms)
                totals[outcome.source].append(outcome.total_ms)
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - began)))

    me = os.getpid()
    print(f"load average before: {load()}", flush=True)
    cpu0 = cpu_seconds(me)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    began = time.monotonic()
    await asyncio.gather(*(user(began + seconds) for _ in range(users)))
    elapsed = time.monotonic() - began
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu1 = cpu_seconds(me)
    await runtime.aclose()
    n = len(totals["all"])
    print(f"load average after: {load()}")
    print(
        f"fetches: {n} in {elapsed:.1f} s = {n / elapsed:.1f}/s, errors: {dict(errors) or 0}; "
        f"SDK process CPU {cpu1 - cpu0:.1f} s ({100 * (cpu1 - cpu0) / elapsed:.0f} % of a core)"
    )
    print(f"{'source':<20}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, values in sorted(totals.items(), key=lambda kv: -len(kv[1])):
        print(
            f"{name:<20}{len(values):>7}{pct(values, 50):>10.1f}{pct(values, 95):>10.1f}"
            f"{pct(values, 99):>10.1f}{max(values):>10.1f}"
        )
    if totals["all"]:
        print(f"mean total {statistics.fmean(totals['all']):.1f} ms")


def servers() -> dict[str, int]:
    """Pids of the local plane's servers, by name (children of this process)."""
    found: dict[str, int] = {}
    for pid in tree(os.getpid())[1:]:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for name, mark in (
            ("questdb", "questdb"),
            ("redis", "redis-server"),
            ("coord", "coordinator"),
        ):
            if mark in cmd and name not in found:
                found[name] = pid
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=48)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--lease-users", type=int, default=0)
    parser.add_argument("--cprofile", default=None)
    parser.add_argument("--lease-process", nargs=3, metavar=("URL", "TOKEN", "USERS"))
    args = parser.parse_args()
    configure_logging("WARNING")
    if args.lease_process:
        url, token, n = args.lease_process
        asyncio.run(lease_process(url, token, int(n), args.seconds))
        return
    with local_plane() as target:
        pids = servers()
        before = {name: tree_cpu(pid) for name, pid in pids.items()}
        lease: subprocess.Popen[bytes] | None = None
        if args.lease_users:
            lease = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--seconds",
                    str(args.seconds + 5),
                    "--lease-process",
                    target.coordinator_url,
                    target.coordinator_token,
                    str(args.lease_users),
                ],
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        began = time.monotonic()
        asyncio.run(drive(target, args.users, args.rate, args.seconds, args.cprofile))
        elapsed = time.monotonic() - began
        if lease is not None:
            lease.wait()
        used = {name: tree_cpu(pid) - before[name] for name, pid in pids.items()}
        print(
            "server CPU over the seeding + run "
            f"({elapsed:.0f} s): "
            + ", ".join(f"{name} {s:.1f} s ({100 * s / elapsed:.0f} %)" for name, s in used.items())
        )


if __name__ == "__main__":
    main()
