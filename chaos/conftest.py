"""Chaos-only fixtures and the report hooks.

Every scenario test carries ``@pytest.mark.scenario(number, title, fault=..., expected=...)``
and takes the `scenario` fixture, which records what it observed and the invariants it
checked. At the end of the session the records are written by `chaos.report.write_report`
to ``reports/chaos/`` (Markdown + JSON). A failed invariant fails the test.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from chaos.report import ChaosReport, InvariantResult, ScenarioRecord, write_report
from chaos.topology import ChaosTopology
from chaos.toxiproxy import ToxiproxyAPI
from lab.servers import ToxiproxyServer

_REPORT = pytest.StashKey[ChaosReport]()
_RECORD = pytest.StashKey[ScenarioRecord]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scenario(number, title, fault, expected): a chaos scenario of the report"
    )
    config.stash[_REPORT] = ChaosReport()


class ScenarioRun:
    """What a scenario test tells the report: observations and invariant checks."""

    def __init__(self, record: ScenarioRecord) -> None:
        self.record = record
        self.started = time.monotonic()

    def observe(self, text: str) -> None:
        self.record.observed.append(text)

    def check(self, result: InvariantResult) -> InvariantResult:
        self.record.invariants.append(result)
        return result

    def expect(self, name: str, ok: bool, detail: str = "") -> InvariantResult:
        """A scenario-specific expectation, recorded like an invariant."""
        return self.check(InvariantResult(name, bool(ok), detail))

    def verify(self) -> None:
        """Fail the test if any recorded check failed."""
        failed = [c for c in self.record.invariants if not c.ok]
        assert not failed, "invariants broken:\n" + "\n".join(
            f"- {c.name}: {c.detail}" for c in failed
        )
        assert self.record.invariants, "a scenario must check at least one invariant"

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[ScenarioRun]:
    marker = request.node.get_closest_marker("scenario")
    assert marker is not None, "chaos tests need @pytest.mark.scenario(number, title, ...)"
    number, title = marker.args
    record = ScenarioRecord(
        number=int(number),
        title=str(title),
        fault=str(marker.kwargs.get("fault", "")),
        expected=str(marker.kwargs.get("expected", "")),
        test_id=request.node.nodeid,
        load_1m=os.getloadavg()[0],
        cpus=os.cpu_count() or 1,
    )
    request.node.stash[_RECORD] = record
    request.config.stash[_REPORT].scenarios.append(record)
    run = ScenarioRun(record)
    yield run
    run.verify()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    record = item.stash.get(_RECORD, None)
    if record is None:
        return report
    if report.when == "setup":
        record.setup_s = report.duration
    if report.when == "call":
        record.duration_s = report.duration
    if report.failed:
        record.outcome = "failed" if report.when == "call" else "error"
        record.error = (record.error or "") + str(report.longreprtext)[-4000:]
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = session.config.stash.get(_REPORT, None)
    if report is None or not report.scenarios:
        return
    files = write_report(report)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"chaos report: {files.markdown} and {files.json}")


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def toxiproxy(toxiproxy_server: ToxiproxyServer) -> Iterator[ToxiproxyAPI]:
    with ToxiproxyAPI(toxiproxy_server.api_url) as api:
        yield api


@pytest.fixture
async def topology(
    toxiproxy: ToxiproxyAPI, request: pytest.FixtureRequest
) -> AsyncIterator[ChaosTopology]:
    topo = await asyncio.to_thread(ChaosTopology, toxiproxy, request.getfixturevalue)
    try:
        yield topo
    finally:
        await topo.aclose_clients()
        await asyncio.to_thread(topo.close)


async def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.01,
    what: str = "condition",
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
