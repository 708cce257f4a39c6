"""Scenario 2: the coordinator is unreachable when the SDK starts."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr
from seamless.config.model import SeamlessConfig
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.memory import InMemoryCoordinator
from seamless.data.coverage import from_timestamps
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.storage.memory import MemoryBarStore
from seamless.errors import CoordinatorStartupError
from seamless.factory import create_coordinator
from seamless.metrics import SeamlessMetrics
from seamless.testing import SyntheticFetcher
from structlog.testing import capture_logs

from chaos.conftest import ScenarioRun
from chaos.invariants import RequestOutcome, counters_match, ranges_accounted
from chaos.topology import ChaosTopology
from chaos.workload import INTERVAL, chaos_backfill, shard_span

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(60)]

ATTEMPTS = 3
BACKOFF_S = 0.2
TIMEOUT_S = 0.4


def _slack(ideal_s: float) -> float:
    """An upper bound that still catches a wrong timeout or backoff (the attempt count is
    checked exactly) but holds on a machine whose CPUs are oversubscribed 2x: the scheduled
    waits stretch by up to that factor, plus a second for process noise."""
    return 3 * ideal_s + 1.0


def _settings(profile: str, url: str, token: str) -> SeamlessConfig:
    return SeamlessConfig(
        profile=profile,  # type: ignore[arg-type]
        coordinator_url=url,
        coordinator_token=SecretStr(token),
        seamless_worker_id=f"s02-{profile}",
        health_attempts=ATTEMPTS,
        health_backoff_seconds=BACKOFF_S,
        health_timeout_seconds=TIMEOUT_S,
    )


async def _start(settings: SeamlessConfig) -> tuple[object, float, list[int], list[str]]:
    """(coordinator or the start-up error, seconds taken, failed attempt numbers, events)."""
    started = time.monotonic()
    with capture_logs() as logs:
        try:
            outcome: object = await create_coordinator(settings, env={})
        except CoordinatorStartupError as exc:
            outcome = exc
    elapsed = time.monotonic() - started
    attempts = [e["attempt"] for e in logs if e["event"] == "seamless.coordinator.health_failed"]
    events = [f"{e['log_level']}:{e['event']}" for e in logs]
    return outcome, elapsed, attempts, events


@pytest.mark.scenario(
    2,
    "Coordinator unreachable at start-up",
    fault="the worker's proxy to the coordinator disabled (connection refused), then "
    "enabled with a `timeout` toxic (accepts, never answers)",
    expected=f"prod: CoordinatorStartupError after exactly {ATTEMPTS} health attempts "
    f"{BACKOFF_S} s apart ({TIMEOUT_S} s timeout each), never a stub; dev: a warning and the "
    "in-memory coordinator, which still backfills; prod starts once the proxy is healthy",
)
async def test_unreachable_coordinator_at_startup(
    topology: ChaosTopology, scenario: ScenarioRun
) -> None:
    proxy = topology.worker_proxy("s02")
    token = topology.coordinator.token
    healthz_before = topology.coordinator_counter(
        "seamless_coordinator_requests_total", route="healthz"
    )

    # Refused: every probe fails at once, so the time is the backoffs.
    with proxy.down():
        refused, refused_s, refused_attempts, _ = await _start(
            _settings("prod", proxy.url(), token)
        )
        dev, _dev_s, _, dev_events = await _start(_settings("dev", proxy.url(), token))
    scenario.observe(
        f"prod, refused: {type(refused).__name__} after {refused_s:.2f} s, "
        f"attempts {refused_attempts}"
    )
    scenario.expect(
        "prod refused: start-up fails after the bounded retries",
        isinstance(refused, CoordinatorStartupError)
        and refused_attempts == list(range(1, ATTEMPTS + 1)),
        f"{refused!r}, attempts {refused_attempts}",
    )
    low = (ATTEMPTS - 1) * BACKOFF_S
    scenario.expect(
        "prod refused: elapsed = the backoffs between attempts",
        low <= refused_s < _slack(low),
        f"{refused_s:.3f} s (expected {low:.1f} s to {_slack(low):.1f} s)",
    )

    # Black-holed: each probe runs into its own timeout.
    with proxy.toxic("timeout", timeout=0):
        holed, holed_s, holed_attempts, _ = await _start(_settings("prod", proxy.url(), token))
    scenario.observe(
        f"prod, black-holed: {type(holed).__name__} after {holed_s:.2f} s, "
        f"attempts {holed_attempts}"
    )
    low = ATTEMPTS * TIMEOUT_S + (ATTEMPTS - 1) * BACKOFF_S
    scenario.expect(
        "prod black-holed: fails after attempts x timeout + backoffs",
        isinstance(holed, CoordinatorStartupError)
        and holed_attempts == list(range(1, ATTEMPTS + 1))
        and low <= holed_s < _slack(low),
        f"{holed_s:.3f} s (expected {low:.1f} s to {_slack(low):.1f} s), attempts {holed_attempts}",
    )

    # Dev: a warning, then the in-memory coordinator, which does the job.
    scenario.observe(f"dev: {type(dev).__name__}; log {dev_events}")
    scenario.expect(
        "dev warns and uses the in-memory coordinator",
        isinstance(dev, InMemoryCoordinator)
        and "warning:seamless.coordinator.unhealthy" in dev_events,
        f"{type(dev).__name__}, {dev_events}",
    )
    assert isinstance(dev, InMemoryCoordinator)
    store = MemoryBarStore()
    provider = SeamlessDataProvider(
        store=store,
        fetcher=SyntheticFetcher(seed=7),
        coordinator=dev,
        strategy=Strategy.AUTO_BACKFILL,
        backfill=chaos_backfill(),
        metrics=SeamlessMetrics(),
    )
    start, end = shard_span(2)
    request = RequestOutcome("s02-dev", INTERVAL, start, end)
    request.result = await provider.fetch(start, end, node_id="s02-dev", interval=INTERVAL)
    stored = await store.read("s02-dev", INTERVAL, start, end)

    # Control: with the proxy healthy, prod starts and returns the real client.
    healthy, healthy_s, healthy_failures, _ = await _start(_settings("prod", proxy.url(), token))
    scenario.observe(f"prod, healthy: {type(healthy).__name__} in {healthy_s:.2f} s")
    scenario.expect(
        "prod starts with the real client once the coordinator is reachable",
        isinstance(healthy, CoordinatorClient) and not healthy_failures,
        f"{type(healthy).__name__}, failures {healthy_failures}",
    )
    if isinstance(healthy, CoordinatorClient):
        await healthy.aclose()

    held = from_timestamps(stored["ts"].to_numpy(), INTERVAL) if stored.height else []
    scenario.check(ranges_accounted([request], {("s02-dev", INTERVAL): held}))
    healthz_after = topology.coordinator_counter(
        "seamless_coordinator_requests_total", route="healthz"
    )
    # The refused probes never reached the coordinator; the black-holed ones did (the toxic
    # drops the answers, not the requests); plus the healthy control's probe.
    scenario.check(
        counters_match(
            [
                (
                    "coordinator requests_total{healthz} delta",
                    healthz_after - healthz_before,
                    ATTEMPTS + 1,
                ),
                (
                    "coordinator claims_total{granted}",
                    topology.coordinator_counter(
                        "seamless_coordinator_claims_total", outcome="granted"
                    ),
                    0,
                ),
            ]
        )
    )
