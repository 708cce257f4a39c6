"""Locust load test of the Seamless data plane, gated on SLA budgets.

Users:
- `SdkUser` calls the SDK's `SeamlessDataProvider.fetch` with the mix of `loadtest.workload`
  (cache hits, storage reads, backfills through the coordinator) and fires one locust
  ``request`` event per SLA phase (``storage_wait``, ``backfill_wait``, ``live_wait``) plus
  ``total`` for the whole fetch;
- `LeaseUser` drives the coordinator's lease API over HTTP: claim/renew/complete cycles,
  claims racing on shared keys (409 held/completed is the expected answer there), fail and
  inspect.

Every request event also feeds `loadtest.recorder.PhaseRecorder` with the exact float
latency, and on quit `loadtest.gate` compares each phase's p95/p99 and failure ratio with the
budgets; a breach prints which phase broke which budget by how much and makes the exit code
non-zero. Run it from the repository root, e.g.::

    .venv/bin/python -m locust --config loadtest/profiles/ci.conf --target-file target.json
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

# locust puts this file's directory on sys.path; the `loadtest` package needs the root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent.lock
from locust import User, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import WorkerRunner
from seamless.errors import SeamlessError, SeamlessSLAExceeded
from seamless.logging import configure_logging

from loadtest.bridge import AsyncBridge
from loadtest.gate import Budgets, GateResult, evaluate, load_target_file
from loadtest.recorder import PhaseRecorder
from loadtest.sdk_runtime import SdkRuntime
from loadtest.target import LoadTarget, load_target
from loadtest.workload import Workload

REPORT_KEY = "seamless_phases"


class _State:
    """What the hooks and users of this process share."""

    recorder = PhaseRecorder()
    target: LoadTarget | None = None
    budgets: Budgets | None = None
    bridge: AsyncBridge | None = None
    runtime: SdkRuntime | None = None
    workload: Workload | None = None
    lock = gevent.lock.Semaphore()


def _options(parser: Any) -> None:
    group = parser.add_argument_group("seamless load gate")
    group.add_argument("--target-file", default="", help="Pulumi stack outputs or SDK config")
    group.add_argument("--sla-preset", default="baseline", help="SLA preset whose budgets gate")
    group.add_argument("--presets-file", default="", help="presets YAML (default: packaged)")
    group.add_argument("--sla-targets", default="", help="stricter target file (YAML)")
    group.add_argument("--phase-report", default="", help="write the gate's JSON report here")
    group.add_argument("--run-id", default="", help="namespace of this run's series and keys")
    group.add_argument("--series", type=int, default=8, help="series the SDK users fetch")
    group.add_argument("--fetch-rate", type=float, default=5.0, help="fetches/s per SdkUser")
    group.add_argument("--lease-rate", type=float, default=10.0, help="tasks/s per LeaseUser")
    group.add_argument("--fetch-latency-ms", type=float, default=5.0, help="upstream latency")
    group.add_argument("--pg-pool", type=int, default=8, help="QuestDB connections/process")


def _init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    configure_logging("WARNING")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    if not options.run_id:
        options.run_id = secrets.token_hex(4)
    SdkUser.wait_time = constant_throughput(options.fetch_rate)
    LeaseUser.wait_time = constant_throughput(options.lease_rate)
    if isinstance(environment.runner, WorkerRunner):
        _State.target = load_target(Path(options.target_file) if options.target_file else None)
    else:
        # Fail before any load on a bad preset, target file or target.
        _State.target = load_target(Path(options.target_file) if options.target_file else None)
        targets = load_target_file(options.sla_targets) if options.sla_targets else None
        _State.budgets = Budgets.build(
            options.sla_preset,
            presets_file=options.presets_file or None,
            targets=targets,
            targets_source=f"target file {options.sla_targets}",
        )
    LeaseUser.host = _State.target.coordinator_url


def _record(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    _State.recorder.record(name, response_time, exception)


def _ship(client_id: str, data: dict[str, Any]) -> None:
    data[REPORT_KEY] = _State.recorder.to_dict()
    _State.recorder = PhaseRecorder()


def _collect(client_id: str, data: dict[str, Any]) -> None:
    if REPORT_KEY in data:
        _State.recorder.merge(PhaseRecorder.from_dict(data[REPORT_KEY]))


def _gate(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or _State.budgets is None:
        return
    if _State.runtime is not None and _State.bridge is not None:
        _State.bridge.run(_State.runtime.aclose())
    duration = _State.recorder.duration_s()
    result = evaluate(_State.recorder, _State.budgets, duration)
    print(_phase_table(_State.recorder, result), flush=True)
    print(result.report(), flush=True)
    options = environment.parsed_options
    if options is not None and options.phase_report:
        _write_report(Path(options.phase_report), environment, result)
    if not result.passed:
        environment.process_exit_code = 1


def _phase_table(recorder: PhaseRecorder, result: GateResult) -> str:
    lines = [
        f"{'phase':<22}{'requests':>9}{'fail':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}"
        f"{'max ms':>10}"
    ]
    for name, row in recorder.summary().items():
        cells = [row.get(k) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        shown = "".join(f"{c:>10.3f}" if c is not None else f"{'-':>10}" for c in cells)
        lines.append(f"{name:<22}{row['requests']:>9}{row['failures']:>6}{shown}")
    lines.append(f"sustained: {result.rps:.1f} req/s over {result.duration_s:.1f} s")
    return "\n".join(lines)


def _write_report(path: Path, environment: Environment, result: GateResult) -> None:
    options = environment.parsed_options
    assert options is not None and _State.budgets is not None
    fetches = _State.recorder.phases.get("total")
    budgets = {
        phase: {f"p{pct:g}": {"limit_ms": b.limit, "source": b.source} for pct, b in by.items()}
        for phase, by in _State.budgets.latency.items()
    }
    report = {
        "preset": options.sla_preset,
        "sla_targets": options.sla_targets or None,
        "run_id": options.run_id,
        "users": options.num_users,
        "processes": getattr(options, "processes", None),
        "duration_s": result.duration_s,
        "requests": result.requests,
        "rps": result.rps,
        "fetches": fetches.requests if fetches else 0,
        "fetch_rps": (fetches.requests / result.duration_s) if fetches and result.duration_s else 0,
        "phases": _State.recorder.summary(),
        "labels": dict(_State.recorder.labels),
        "budgets": budgets,
        "max_failure_ratio": _State.budgets.max_failure_ratio.limit,
        "gate": result.to_dict(),
        "recorder": _State.recorder.to_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")


def _sdk(environment: Environment) -> tuple[AsyncBridge, SdkRuntime, Workload]:
    """This process's SDK, created by the first user that needs it (after any fork), and
    the seeded region every series starts with."""
    with _State.lock:
        if _State.runtime is None:
            options = environment.parsed_options
            assert options is not None and _State.target is not None
            bridge = AsyncBridge()
            runtime = bridge.run(
                SdkRuntime.create(
                    _State.target,
                    preset=options.sla_preset,
                    presets_file=options.presets_file or None,
                    fetch_latency_ms=options.fetch_latency_ms,
                    pg_pool=options.pg_pool,
                )
            )
            workload = Workload(run_id=options.run_id, series=options.series)
            bridge.run(runtime.seed(workload.seed_requests()))
            _State.bridge, _State.runtime, _State.workload = bridge, runtime, workload
        assert _State.bridge is not None and _State.workload is not None
        return _State.bridge, _State.runtime, _State.workload


class SdkUser(User):
    """Fetches through the SDK: cache hits, storage reads and backfills, by weight."""

    weight = 4

    def on_start(self) -> None:
        self.bridge, self.runtime, self.workload = _sdk(self.environment)

    @task
    def fetch(self) -> None:
        request = self.workload.next()
        fire = self.environment.events.request.fire
        began = time.perf_counter()
        try:
            outcome = self.bridge.run(self.runtime.timed_fetch(request))
        except SeamlessError as exc:
            elapsed = (time.perf_counter() - began) * 1000.0
            if isinstance(exc, SeamlessSLAExceeded):
                fire(
                    request_type="sla",
                    name=exc.phase,
                    response_time=exc.elapsed_ms,
                    response_length=0,
                    exception=exc,
                )
            fire(
                request_type="fetch",
                name="total",
                response_time=elapsed,
                response_length=0,
                exception=exc,
            )
            _State.recorder.count_label(f"error:{type(exc).__name__}")
            return
        self.workload.done(request)
        for phase, ms in outcome.phase_ms.items():
            fire(
                request_type="sla",
                name=phase,
                response_time=ms,
                response_length=0,
                exception=None,
            )
        fire(
            request_type="fetch",
            name="total",
            response_time=outcome.total_ms,
            response_length=outcome.rows,
            exception=None,
        )
        # the per-source breakdown is for the report only: not a locust request of its own
        _State.recorder.record(f"total:{outcome.source}", outcome.total_ms, None)
        _State.recorder.count_label(f"kind:{request.kind}")
        _State.recorder.count_label(f"source:{outcome.source}")


class LeaseUser(FastHttpUser):
    """Drives the coordinator's lease API directly, as a worker fleet would."""

    weight = 1
    host = "http://127.0.0.1"  # replaced by the target's coordinator URL at init
    shared_keys = 16

    def on_start(self) -> None:
        assert _State.target is not None
        self.headers = {"Authorization": f"Bearer {_State.target.coordinator_token}"}
        options = self.environment.parsed_options
        self.prefix = f"load-{options.run_id if options else 'x'}-{os.getpid()}-{id(self):x}"
        self.counter = 0

    def _key(self) -> str:
        self.counter += 1
        return f"{self.prefix}:60:{self.counter}:{self.counter}::"

    def _post(self, name: str, path: str, body: dict[str, Any], ok: tuple[int, ...]) -> Any:
        with self.client.post(
            path, json=body, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code in ok:
                response.success()
                return response.json() if response.status_code == 200 else None
            response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            return None

    @task(3)
    def claim_renew_complete(self) -> None:
        key = self._key()
        granted = self._post(
            "lease.claim", "/v1/leases/claim", {"key": key, "lease_ms": 30_000}, (200,)
        )
        if not granted:
            return
        token = granted["lease"]["token"]
        renew = {"key": key, "token": token, "lease_ms": 30_000}
        if self._post("lease.renew", "/v1/leases/renew", renew, (200,)) is None:
            return
        self._post("lease.complete", "/v1/leases/complete", {"key": key, "token": token}, (200,))

    @task(2)
    def contended_claim(self) -> None:
        """Every LeaseUser races for the same few keys: 409 held/completed is expected."""
        options = self.environment.parsed_options
        run = options.run_id if options else "x"
        # a fresh set of shared keys every second, so the race never runs out
        key = f"load-{run}-shared:60:{int(time.time())}:{self.counter % self.shared_keys}::"
        self.counter += 1
        body = {"key": key, "lease_ms": 200}
        granted = self._post("lease.claim", "/v1/leases/claim", body, (200, 409))
        if granted:
            done = {"key": key, "token": granted["lease"]["token"]}
            # a 200 ms lease may already have expired: 409 stale is a correct answer too
            self._post("lease.complete", "/v1/leases/complete", done, (200, 409))

    @task(1)
    def claim_fail(self) -> None:
        key = self._key()
        granted = self._post(
            "lease.claim", "/v1/leases/claim", {"key": key, "lease_ms": 30_000}, (200,)
        )
        if granted:
            body = {"key": key, "token": granted["lease"]["token"], "reason": "load test"}
            self._post("lease.fail", "/v1/leases/fail", body, (200,))

    @task(1)
    def inspect(self) -> None:
        if self.counter == 0:
            return
        with self.client.get(
            f"/v1/leases/{self.prefix}:60:{self.counter}:{self.counter}::",
            headers=self.headers,
            name="lease.inspect",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")


# locust's hooks are untyped (its decorator would erase our functions' types under mypy
# --strict), so they are registered through an `Any`.
_hooks: Any = events
_hooks.init_command_line_parser.add_listener(_options)
_hooks.init.add_listener(_init)
_hooks.request.add_listener(_record)
_hooks.report_to_master.add_listener(_ship)
_hooks.worker_report.add_listener(_collect)
_hooks.quitting.add_listener(_gate)
