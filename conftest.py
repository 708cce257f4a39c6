# The real-server fixtures (Redis, QuestDB, MinIO, toxiproxy, ...) for every test directory.
import asyncio
import gc
import sys
import threading
from collections.abc import Iterator

import pytest

pytest_plugins = ["lab.fixtures"]

# Seconds before pytest-timeout's deadline at which the pending asyncio tasks are dumped:
# its own dump shows threads only, and a hung async test is an idle event loop there.
_TASK_DUMP_LEAD_S = 5.0


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


def _dump_pending_tasks(nodeid: str) -> None:
    tasks = [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]
    print(f"\n+++ {len(tasks)} pending asyncio tasks of {nodeid} +++", file=sys.stderr)
    for task in tasks:
        task.print_stack(limit=25, file=sys.stderr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timeout = _timeout_of(item)
    timer = None
    if timeout > _TASK_DUMP_LEAD_S:
        timer = threading.Timer(timeout - _TASK_DUMP_LEAD_S, _dump_pending_tasks, (item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
