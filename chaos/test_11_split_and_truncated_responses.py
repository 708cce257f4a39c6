"""Scenario 11: coordinator responses split into tiny packets, then truncated."""

from __future__ import annotations

import pytest
from seamless.errors import CoordinatorUnavailable

from chaos.conftest import ScenarioRun, wait_for
from chaos.invariants import RequestOutcome
from chaos.topology import ChaosTopology
from chaos.workload import Worker, make_worker, shard_span, standard_invariants
from lab.servers import QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(90)]


@pytest.mark.scenario(
    11,
    "Split packets and truncated coordinator responses",
    fault="worker → coordinator proxy: `slicer` (8±4-byte packets, 100 µs apart) on every "
    "response; then `limit_data` cutting each response after 40 bytes (mid status line) or "
    "190 bytes (mid body)",
    expected="split responses are reassembled and the backfill completes; a truncated response "
    "is CoordinatorUnavailable (never 'no lease', even though the claim ran); once the "
    "fault is gone the worker's retry completes every shard",
)
async def test_split_and_truncated_responses(
    topology: ChaosTopology, questdb_server: QuestDBServer, scenario: ScenarioRun
) -> None:
    prefix = topology.table_prefix("s11")
    worker = make_worker(topology, "s11-w", store=topology.store(prefix))
    proxy = topology.worker_proxy(worker.name)

    with proxy.toxic("slicer", average_size=8, size_variation=4, delay=100):
        sliced = await worker.fetch(*shard_span(2, 0), "s11-sliced")
    scenario.observe(
        f"slicer: {sliced.result.frame.height if sliced.result else repr(sliced.error)} bars"
    )
    scenario.expect(
        "split packets: the backfill completes normally",
        sliced.result is not None and not sliced.result.metadata.missing,
        repr(sliced.error),
    )

    raw = topology.client("s11-raw")
    outcomes: dict[int, object] = {}
    for cut in (40, 190):
        with topology.worker_proxy(raw.worker).toxic("limit_data", bytes=cut):
            try:
                outcomes[cut] = await raw.claim(f"s11-raw-{cut}:60:0:0::", 1_500)
            except CoordinatorUnavailable as exc:
                outcomes[cut] = exc
    for cut, outcome in outcomes.items():
        scenario.observe(f"claim cut after {cut} bytes: {outcome!r}"[:240])
    scenario.expect(
        "a truncated response is CoordinatorUnavailable, never 'not granted'",
        all(isinstance(o, CoordinatorUnavailable) for o in outcomes.values()),
        str({k: type(v).__name__ for k, v in outcomes.items()}),
    )
    held = await topology.inspect([f"s11-raw-{cut}:60:0:0::" for cut in outcomes])
    scenario.observe(
        "what the coordinator did with those claims: "
        + ", ".join(f"{k.split(':')[0]}={v.state}" for k, v in held.items())
    )

    # A whole fetch under truncation: reported, then retried once the fault is gone.
    start, end = shard_span(2, 4)
    attempts: list[RequestOutcome] = []
    with proxy.toxic("limit_data", bytes=190):
        attempts.append(await worker.fetch(start, end, "s11-cut"))
    retried: RequestOutcome = await wait_for(
        lambda: _retry(worker, start, end, attempts), timeout=20, what="a successful retry"
    )
    scenario.observe(
        f"fetch under truncation: {type(attempts[0].error).__name__}; succeeded on attempt "
        f"{len(attempts)} after the fault ({retried.result and retried.result.frame.height} bars)"
    )
    scenario.expect(
        "the truncated fetch raised CoordinatorUnavailable and the retry completed it",
        isinstance(attempts[0].error, CoordinatorUnavailable)
        and retried.result is not None
        and not retried.result.metadata.missing,
        repr(attempts[0].error)[:200],
    )
    for check in await standard_invariants(topology, [worker], prefix):
        scenario.check(check)


async def _retry(
    worker: Worker, start: int, end: int, attempts: list[RequestOutcome]
) -> RequestOutcome | None:
    outcome = await worker.fetch(start, end, "s11-cut")
    attempts.append(outcome)
    if outcome.result is not None and not outcome.result.metadata.missing:
        return outcome
    return None
