"""A stale writer process for scenario 15: it holds a lease token, fetches its bars, then
stops itself (SIGSTOP, a stand-in for a GC pause or a frozen VM) at the worst moment and
writes when the scenario resumes it (SIGCONT), long after its lease was taken over.

Modes: ``before-write`` pauses just before `QuestDBBarStore.write` (its fence check runs
after the pause); ``after-check`` pauses between the store's fence check and the send, so
its bars land in the table and only the read path can keep them from being served.
Prints one JSON line when paused and one with the outcome.
  python chaos/stale_writer.py '{"pg_dsn": ..., "ilp_conf": ..., ...}'
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from seamless.data.storage.base import to_bar_frame
from seamless.data.storage.questdb import QuestDBBarStore, _Write
from seamless.errors import WriteFenced
from seamless.testing import SyntheticFetcher


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    store = QuestDBBarStore(spec["pg_dsn"], spec["ilp_conf"], table_prefix=spec["prefix"])
    node, interval, token = spec["node"], int(spec["interval"]), int(spec["token"])
    raw = await SyntheticFetcher(seed=int(spec["seed"])).fetch(
        int(spec["start"]), int(spec["end"]), node_id=node, interval=interval
    )
    bars = to_bar_frame(raw)
    await store.ensure_table()
    if spec["mode"] == "after-check":
        await store._check_fence(node, interval, bars, token)  # passes: nothing newer yet
    print(json.dumps({"paused": os.getpid()}), flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
    try:
        if spec["mode"] == "after-check":
            await store._post_ilp([_Write(node, interval, bars, token)])
            await store._wait_applied()
        else:
            await store.write(node, interval, bars, token=token)
        outcome = {"result": "written", "rows": bars.height}
    except WriteFenced as exc:
        outcome = {"result": "fenced", "newer": exc.newer}
    finally:
        await store.aclose()
    return outcome


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))), flush=True)
