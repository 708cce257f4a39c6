"""One SDK process for the cross-process backfill test: waits for a go-file, fetches one
window through the real coordinator and QuestDB, prints the result as JSON.

    python sdp_fetch_worker.py '{"coordinator_url": ..., "token": ..., "pg_dsn": ...}'
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry
from seamless.coordination.client import CoordinatorClient
from seamless.data.backfill import BackfillConfig
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.storage import QuestDBBarStore
from seamless.metrics import SeamlessMetrics
from seamless.testing import FileCallLog, SyntheticFetcher


async def main(args: dict[str, object]) -> dict[str, object]:
    Path(str(args["ready_file"])).touch()
    go = Path(str(args["go_file"]))
    deadline = time.monotonic() + 30
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal within 30 s")
        await asyncio.sleep(0.005)
    client = CoordinatorClient(str(args["coordinator_url"]), token=str(args["token"]))
    store = QuestDBBarStore(
        str(args["pg_dsn"]), str(args["ilp_conf"]), table_prefix=str(args["prefix"])
    )
    fetcher = SyntheticFetcher(
        seed=7,
        latency_ms=float(str(args["latency_ms"])),
        call_log=FileCallLog(Path(str(args["call_log"]))),
    )
    provider = SeamlessDataProvider(
        store=store,
        fetcher=fetcher,
        coordinator=client,
        strategy=Strategy.AUTO_BACKFILL,
        backfill=BackfillConfig(window_bars=int(str(args["window_bars"])), lease_ms=30_000),
        metrics=SeamlessMetrics(CollectorRegistry()),
    )
    try:
        result = await provider.fetch(
            int(str(args["start"])), int(str(args["end"])), node_id="xproc", interval=60
        )
    finally:
        await client.aclose()
        await store.aclose()
    report = result.metadata.backfill
    return {
        "rows": result.frame.height,
        "complete": result.metadata.complete,
        "fingerprint": result.fingerprint,
        "completed": len(report.completed) if report else 0,
        "done_elsewhere": len(report.done_elsewhere) if report else 0,
        "first_close": result.frame["close"][0],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
