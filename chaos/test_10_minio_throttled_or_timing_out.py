"""Scenario 10: MinIO times out, is throttled, or is gone while artifacts are published."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from seamless.data.artifacts import ArtifactPublisher, s3_client

from chaos.conftest import ScenarioRun, wait_for
from chaos.topology import ChaosTopology
from chaos.workload import make_worker, shard_span, standard_invariants
from lab.servers import MinioServer, QuestDBServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


def _objects(topology: ChaosTopology, bucket: str) -> list[str]:
    s3 = s3_client(topology.minio.endpoint, topology.minio.access_key, topology.minio.secret_key)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="artifacts/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def _publisher(
    topology: ChaosTopology,
    bucket: str,
    metrics: Any,
    *,
    read_timeout_s: float = 0.5,
    **kwargs: Any,
) -> ArtifactPublisher:
    proxy = topology.minio_proxy()
    s3 = s3_client(
        proxy.url(),
        topology.minio.access_key,
        topology.minio.secret_key,
        connect_timeout_s=0.5,
        read_timeout_s=read_timeout_s,
    )
    settings: dict[str, Any] = {"max_attempts": 8, "backoff_initial_s": 0.05, "backoff_max_s": 0.3}
    settings.update(kwargs)
    return ArtifactPublisher(s3, bucket, metrics=metrics, **settings)


@pytest.mark.scenario(
    10,
    "MinIO timing out or throttled during artifact publication",
    fault="MinIO proxy: a `timeout` toxic (answers dropped) until two publish retries were "
    "counted; then `bandwidth` 8 KB/s; then the proxy disabled with a 2-attempt publisher",
    expected="every fetch returns at once (publication is off the fetch path); failed attempts "
    "are counted as retries and the artifact is published once MinIO answers; throttled "
    "publication completes; an artifact that cannot be published is counted failed, not lost",
)
async def test_minio_faults_during_publication(
    topology: ChaosTopology,
    questdb_server: QuestDBServer,
    minio_server: MinioServer,
    scenario: ScenarioRun,
) -> None:
    bucket = f"chaos-s10-{topology.tag}"
    s3_client(
        minio_server.endpoint, minio_server.access_key, minio_server.secret_key
    ).create_bucket(Bucket=bucket)
    prefix = topology.table_prefix("s10")
    worker = make_worker(topology, "s10-w", store=topology.store(prefix))
    publisher = _publisher(topology, bucket, worker.metrics)
    worker.provider.publisher = publisher
    minio = topology.minio_proxy()

    # 1. MinIO accepts connections but never answers.
    with minio.toxic("timeout", timeout=0):
        began = time.monotonic()
        first = await worker.fetch(*shard_span(1, 0), "s10-node")
        fetch_s = time.monotonic() - began
        await wait_for(lambda: publisher.retries >= 2, timeout=20, what="two publish retries")
        retries_in_outage = publisher.retries
    drained = await asyncio.to_thread(publisher.drain, 20)
    scenario.observe(
        f"timeout: fetch took {fetch_s:.2f} s ({first.result and first.result.frame.height} bars); "
        f"{retries_in_outage} retries during the outage; drained={drained}, "
        f"published={publisher.published}, failed={publisher.failed}"
    )
    scenario.expect(
        "the fetch returned without waiting for MinIO",
        first.result is not None and fetch_s < 5.0 and not first.result.metadata.missing,
        f"{fetch_s:.2f} s",
    )
    scenario.expect(
        "failed attempts were retried and the artifact published after recovery",
        drained and publisher.published == 1 and publisher.failed == 0 and retries_in_outage >= 2,
        f"published {publisher.published}, failed {publisher.failed}, retries {publisher.retries}",
    )

    # 2. Throttled: a bigger artifact through an 8 KB/s link (a publisher whose read timeout
    # allows for a slow upload).
    throttled = _publisher(topology, bucket, worker.metrics, read_timeout_s=10.0)
    worker.provider.publisher = throttled
    with minio.toxic("bandwidth", stream="upstream", rate=8):
        began = time.monotonic()
        second = await worker.fetch(*shard_span(4, 1), "s10-node")
        fetch_s = time.monotonic() - began
        drained = await asyncio.to_thread(throttled.drain, 60)
        publish_s = time.monotonic() - began
    scenario.observe(
        f"bandwidth: fetch took {fetch_s:.2f} s, publication done after {publish_s:.2f} s; "
        f"published={throttled.published}, retries={throttled.retries}"
    )
    scenario.expect(
        "throttled: the fetch did not wait for the slow upload, which still completed",
        second.result is not None
        and not second.result.metadata.missing
        and drained
        and throttled.published == 1
        and fetch_s < publish_s,
        f"fetch {fetch_s:.2f} s < publish {publish_s:.2f} s, published {throttled.published}",
    )

    # 3. Gone for good: a publisher with 2 attempts counts the artifact failed.
    doomed = _publisher(topology, bucket, worker.metrics, max_attempts=2)
    worker.provider.publisher = doomed
    with minio.down():
        third = await worker.fetch(*shard_span(1, 5), "s10-node")
        drained = await asyncio.to_thread(doomed.drain, 20)
    scenario.observe(
        f"down: failed={doomed.failed}, retries={doomed.retries}, last error "
        f"{(doomed.last_error or '')[:120]!r}"
    )
    scenario.expect(
        "an artifact that cannot be published is counted failed (with its error), not lost",
        third.result is not None and drained and doomed.failed == 1 and bool(doomed.last_error),
        f"failed {doomed.failed}",
    )
    for each in (publisher, throttled, doomed):
        each.close(5)

    objects = _objects(topology, bucket)
    manifests = [k for k in objects if k.endswith("manifest.json")]
    scenario.observe(f"objects in MinIO: {len(objects)} ({len(manifests)} manifests)")
    scenario.expect(
        "MinIO holds the two published artifacts (frame + manifest each)",
        len(manifests) == 2 and len(objects) == 4,
        str(objects),
    )
    retry_metric = worker.counter("seamless_artifact_publish_retry_total")
    scenario.expect(
        "artifact counters match the publishers' events",
        worker.counter("seamless_artifact_publish_total", outcome="published") == 2
        and worker.counter("seamless_artifact_publish_total", outcome="failed") == 1
        and retry_metric == publisher.retries + throttled.retries + doomed.retries,
        f"published {worker.counter('seamless_artifact_publish_total', outcome='published')}, "
        f"failed {worker.counter('seamless_artifact_publish_total', outcome='failed')}, "
        f"retries {retry_metric} vs {publisher.retries + throttled.retries + doomed.retries}",
    )
    for check in await standard_invariants(topology, [worker], prefix):
        scenario.check(check)
