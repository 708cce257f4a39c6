"""The data provider against real QuestDB, MinIO and the real coordinator service."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from seamless.coordination.client import CoordinatorClient
from seamless.data.artifacts import Artifact, ArtifactPublisher, fingerprint, s3_client
from seamless.data.backfill import BackfillConfig, lease_key
from seamless.data.coverage import Range
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.storage import QuestDBBarStore
from seamless.errors import StorageError
from seamless.metrics import SeamlessMetrics
from seamless.testing import FileCallLog, SyntheticFetcher, synthetic_bars

from lab.coordinator_process import CoordinatorServer
from lab.servers import MinioServer, QuestDBServer

pytestmark = pytest.mark.integration

IV = 60
WORKER = Path(__file__).with_name("sdp_fetch_worker.py")


def _prefix() -> str:
    return f"seamless_t{secrets.token_hex(4)}_"


def _count(pg_dsn: str, table: str) -> int:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT count() FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
async def store(questdb_server: QuestDBServer) -> AsyncIterator[QuestDBBarStore]:
    s = QuestDBBarStore(questdb_server.pg_dsn, questdb_server.ilp_http_conf, table_prefix=_prefix())
    yield s
    await s.aclose()


@pytest.fixture
def bucket(minio_server: MinioServer) -> Iterator[str]:
    name = f"seamless-{secrets.token_hex(4)}"
    s3 = s3_client(minio_server.endpoint, minio_server.access_key, minio_server.secret_key)
    s3.create_bucket(Bucket=name)
    yield name


async def test_questdb_store_upserts_and_reads_back(
    store: QuestDBBarStore, questdb_server: QuestDBServer
) -> None:
    bars = synthetic_bars(0, IV * 1999, node_id="n", interval=IV, seed=3)
    assert await store.write("n", IV, bars) == 2000
    # a repeated write and a stale overlapping one never duplicate rows
    await store.write("n", IV, bars.slice(500, 900))
    await store.write("n", IV, bars)
    assert _count(questdb_server.pg_dsn, store.table) == 2000
    assert store.table.startswith("seamless_") and store.table.endswith("bars")
    back = await store.read("n", IV, 0, IV * 1999)
    assert back.equals(bars)
    assert (await store.read("n", IV, IV * 10, IV * 19)).equals(bars.slice(10, 10))
    assert (await store.read("other", IV, 0, IV * 1999)).height == 0
    assert (await store.read("n", 300, 0, IV * 1999)).height == 0


async def test_questdb_upsert_replaces_values(store: QuestDBBarStore) -> None:
    bars = synthetic_bars(0, IV * 9, node_id="n", interval=IV)
    await store.write("n", IV, bars)
    await store.write("n", IV, bars.with_columns(pl.lit(1.0).alias("close")).head(3))
    back = await store.read("n", IV, 0, IV * 9)
    assert back["close"].to_list()[:3] == [1.0, 1.0, 1.0]
    assert back["close"].to_list()[3:] == bars["close"].to_list()[3:]


def test_bad_table_prefix_is_named(questdb_server: QuestDBServer) -> None:
    with pytest.raises(StorageError, match="table_prefix"):
        QuestDBBarStore(questdb_server.pg_dsn, questdb_server.ilp_http_conf, table_prefix="x; drop")


def test_artifact_publish_and_manifest(minio_server: MinioServer, bucket: str) -> None:
    s3 = s3_client(minio_server.endpoint, minio_server.access_key, minio_server.secret_key)
    metrics = SeamlessMetrics(CollectorRegistry())
    publisher = ArtifactPublisher(s3, bucket, metrics=metrics)
    frame = synthetic_bars(0, IV * 99, node_id="n", interval=IV)
    fp = fingerprint(
        frame,
        node_id="n",
        interval=IV,
        coverage_bounds=[Range(0, IV * 99)],
        conformance_version="1",
    )
    artifact = Artifact("n", IV, 0, IV * 99, fp, frame, [Range(0, IV * 99)])
    assert publisher.submit(artifact)
    assert publisher.drain(20)
    publisher.close()
    assert (publisher.published, publisher.failed) == (1, 0)
    base = f"artifacts/n/60/0-5940/{fp.removeprefix('sha256:')}/"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=base + "manifest.json")["Body"].read())
    assert manifest["fingerprint"] == fp and manifest["rows"] == 100
    body = s3.get_object(Bucket=bucket, Key=manifest["frame_key"])["Body"].read()
    assert pl.read_parquet(io.BytesIO(body)).equals(frame)
    assert metrics.value("seamless_artifact_publish_total", {"outcome": "published"}) == 1


def test_publish_failure_is_retried_counted_and_never_blocks(minio_server: MinioServer) -> None:
    s3 = s3_client(minio_server.endpoint, minio_server.access_key, minio_server.secret_key)
    metrics = SeamlessMetrics(CollectorRegistry())
    publisher = ArtifactPublisher(
        s3,
        "no-such-bucket-here",
        max_attempts=3,
        backoff_initial_s=0.01,
        max_pending=2,
        metrics=metrics,
    )
    frame = synthetic_bars(0, IV * 9, node_id="n", interval=IV)
    artifacts = [Artifact("n", IV, 0, IV * 9, f"sha256:{i:064x}", frame, []) for i in range(6)]
    began = time.monotonic()
    accepted = [publisher.submit(a) for a in artifacts]
    assert time.monotonic() - began < 0.5  # submit never waits on the object store
    assert publisher.drain(30)
    publisher.close()
    assert publisher.failed == sum(accepted) and publisher.dropped == 6 - sum(accepted)
    assert publisher.retries == 2 * publisher.failed
    assert (
        metrics.value("seamless_artifact_publish_total", {"outcome": "failed"}) == publisher.failed
    )
    assert "NoSuchBucket" in (publisher.last_error or "")


async def test_fetch_backfills_stores_returns_then_serves_from_storage(
    questdb_server: QuestDBServer,
    minio_server: MinioServer,
    coordinator_server: CoordinatorServer,
    bucket: str,
    tmp_path: Path,
) -> None:
    prefix = _prefix()
    calls = FileCallLog(tmp_path / "calls.log")
    s3 = s3_client(minio_server.endpoint, minio_server.access_key, minio_server.secret_key)

    async def provider_run() -> tuple[Any, ...]:
        client = CoordinatorClient(coordinator_server.url, token=coordinator_server.token)
        store = QuestDBBarStore(
            questdb_server.pg_dsn, questdb_server.ilp_http_conf, table_prefix=prefix
        )
        publisher = ArtifactPublisher(s3, bucket, metrics=SeamlessMetrics(CollectorRegistry()))
        provider = SeamlessDataProvider(
            store=store,
            fetcher=SyntheticFetcher(seed=11, latency_ms=10, call_log=calls),
            coordinator=client,
            strategy=Strategy.SEAMLESS,
            backfill=BackfillConfig(window_bars=300),
            publisher=publisher,
            metrics=SeamlessMetrics(CollectorRegistry()),
        )
        try:
            result = await provider.fetch(0, IV * 2999, node_id="e2e", interval=IV)
            assert await asyncio.to_thread(publisher.drain, 20)
            info = await client.inspect(lease_key("e2e", IV, Range(0, IV * 299)))
        finally:
            publisher.close()
            await client.aclose()
            await store.aclose()
        return result, info, publisher

    first, info, publisher = await provider_run()
    assert first.metadata.sources == ["backfill"] and first.metadata.complete
    assert first.frame.equals(synthetic_bars(0, IV * 2999, node_id="e2e", interval=IV, seed=11))
    assert _count(questdb_server.pg_dsn, f"{prefix}bars") == 3000
    assert len(calls.counts()) == 10 and set(calls.counts().values()) == {1}
    assert info.state == "completed"
    assert publisher.published == 1

    second, _, _ = await provider_run()  # a fresh provider: no in-memory cache
    assert second.metadata.sources == ["storage"] and second.metadata.complete
    assert len(calls.counts()) == 10 and set(calls.counts().values()) == {1}
    assert second.fingerprint == first.fingerprint
    key = f"artifacts/e2e/60/0-179940/{first.fingerprint.removeprefix('sha256:')}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert manifest["fingerprint"] == first.fingerprint


def test_two_processes_never_backfill_the_same_shard_twice(
    questdb_server: QuestDBServer, coordinator_server: CoordinatorServer, tmp_path: Path
) -> None:
    prefix = _prefix()
    call_log = tmp_path / "calls.log"
    go = tmp_path / "go"
    windows = [(0, IV * 2999), (IV * 1500, IV * 4499)]
    procs = []
    for i, (start, end) in enumerate(windows):
        args = {
            "coordinator_url": coordinator_server.url,
            "token": coordinator_server.token,
            "pg_dsn": questdb_server.pg_dsn,
            "ilp_conf": questdb_server.ilp_http_conf,
            "prefix": prefix,
            "call_log": str(call_log),
            "ready_file": str(tmp_path / f"ready{i}"),
            "go_file": str(go),
            "latency_ms": 40,
            "window_bars": 100,
            "start": start,
            "end": end,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(args)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    counts = FileCallLog(call_log).counts()
    assert len(counts) == 45, "30 + 30 shards with 15 shared"
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v > 1}
    assert all(o["complete"] and o["rows"] == 3000 for o in outputs)
    assert sum(o["completed"] for o in outputs) == 45
    assert sum(o["done_elsewhere"] for o in outputs) == 15
    assert _count(questdb_server.pg_dsn, f"{prefix}bars") == 4500
