"""The partial stack (coordinator, Redis, QuestDB, MinIO, Prometheus) on a real dockerd.

The Pulumi docker and minio providers cannot be built here, so no engine runs this stack.
What the engine would create is taken from the program itself: it runs under the recording
mocks (tests/engine/docker/declarations.py, in a process of its own) and every declared
`docker:*` object is created on the real daemon by lab/docker_stack.py with the recorded
inputs (images from `Pulumi.partial.yaml`'s `images`, env, network aliases, volumes, files
containers and their uploads, read-only roots, health checks, host ports on 127.0.0.1). The
MinIO bucket, users and policies are applied as the minio provider would, through MinIO's
admin API. Then every declared health check must pass within the time its own timings
allow, an SDK built from the exported `hostSdkConfig` runs one fetch with backfill (rows
checked in the containerised QuestDB, its artifacts in MinIO under the SDK's own key) and a
lease claim/complete cycle runs against the coordinator with the exported token. Every
container, volume and network is removed afterwards, also on failure, and a dockerd this
test started is stopped again.

The fixtures (one stack per session, shared with the load gate and the chaos scenarios)
are in conftest.py, which says how the objects are isolated.
"""

from __future__ import annotations

import io
import posixpath
import subprocess
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from images.build import Builder, docker_cli, stack_images
from infra.platforms.docker import _under, files_dirs
from lab.docker_stack import (
    CONTAINER,
    IMAGE,
    DockerStack,
)
from tests.engine.docker.conftest import STACK, assert_running_as_declared
from tests.infra.harness import stack_catalog

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]

INTERVAL = 60
WINDOW_BARS = 120
SHARDS = 3


# --- the declarations ---------------------------------------------------------------------


def test_images_are_the_stack_files_refs(images: Builder, declared: dict[str, Any]) -> None:
    refs = stack_images(STACK)
    used = {r["inputs"]["image"] for r in declared["resources"] if r["type"] == CONTAINER}
    built = {r["inputs"]["imageName"] for r in declared["resources"] if r["type"] == IMAGE}
    assert used | built <= set(refs.values()), (used | built) - set(refs.values())
    assert {b.ref for b in images.results.values()} >= set(refs.values())


def test_every_files_directory_is_open_to_the_services_uid(images: Builder) -> None:
    """Docker seeds an empty volume with the image's directory at the mount path, its mode
    and owner included: a directory the image keeps private (Debian's /etc/redis, 2770
    redis:redis) locks the service's own uid out of the files delivered there."""
    catalog = stack_catalog(STACK)
    refs = stack_images(STACK)
    for svc in catalog:
        dirs = [*files_dirs(svc), *(v.mount_path for v in svc.volumes)]
        checks = [f"{{ test ! -e {d} || {{ test -r {d} && test -x {d}; }}; }}" for d in dirs]
        # A file delivered into a data volume lands in a directory the service also writes
        # (QuestDB's conf/): the image must have it, writable; an upload would make it
        # root's 0755 (found on dockerd: "Could not extract log configuration file").
        targets = [c.path for c in svc.config_files]
        targets += [s.file for s in svc.secrets if s.file is not None]
        for target in targets:
            parent = posixpath.dirname(target)
            if any(_under(target, v.mount_path) for v in svc.volumes):
                checks.append(f"test -d {parent} && test -w {parent}")
                dirs.append(parent)
        script = " && ".join(checks)
        proc = subprocess.run(
            [docker_cli(), "run", "--rm", "--network", "none", "--entrypoint", "sh",
             "--user", f"{svc.run_as_user}:{svc.run_as_user}", refs[svc.name], "-c",
             f"{script} || {{ ls -ld {' '.join(dirs)}; exit 1; }}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, (svc.name, proc.stdout + proc.stderr)


def test_every_declared_health_check_passes(stack: DockerStack) -> None:
    declared = stack.containers()
    started = {n for n, c in declared.items() if c.get("start", True) is not False}
    assert started == {"seamless-coordinator", "redis", "questdb", "minio", "prometheus"}
    for name in started:
        assert_running_as_declared(stack, name)
    # files containers carry the uploads and never run
    for name in set(declared) - started:
        assert stack.engine.inspect(stack.created[name])["State"]["Status"] == "created"


# --- through the published ports ----------------------------------------------------------


def test_lease_cycle_on_the_coordinator_with_its_token(
    stack: DockerStack, declared: dict[str, Any]
) -> None:
    import asyncio

    from seamless.config.loading import load_section
    from seamless.coordination.client import CoordinatorClient, Granted

    host = declared["outputs"]["hostSdkConfig"]["seamless"]
    settings = load_section({**host, "seamless_worker_id": "engine-lease"}, env={}).settings

    async def cycle() -> None:
        async with CoordinatorClient.from_config(settings, env={}) as client:
            await client.health(timeout=5)
            key = f"engine-docker:{stack.run_id}:60:0"
            outcome = await client.claim(key, 30_000)
            assert isinstance(outcome, Granted), outcome
            done = await client.complete(outcome.lease)
            assert done is not None
            info = await client.inspect(key)
            assert info.state == "completed", info
        # without the token the coordinator refuses
        async with httpx.AsyncClient(base_url=str(settings.coordinator_url)) as raw:
            refused = await raw.post(
                "/v1/leases/claim", json={"key": key, "lease_ms": 1000, "holder": "x"}
            )
            assert refused.status_code == 401, refused.text

    asyncio.run(cycle())


def test_sdk_fetch_with_backfill_lands_in_questdb_and_minio(
    stack: DockerStack, declared: dict[str, Any]
) -> None:
    import asyncio

    from prometheus_client import CollectorRegistry
    from seamless.config.loading import load_section
    from seamless.coordination.client import CoordinatorClient
    from seamless.data.backfill import BackfillConfig
    from seamless.data.provider import Strategy
    from seamless.factory import ProviderSettings, create_provider
    from seamless.metrics import SeamlessMetrics
    from seamless.testing import MemoryCallLog, SyntheticFetcher

    host = declared["outputs"]["hostSdkConfig"]["seamless"]
    node_id = f"engine-docker-{stack.run_id}"
    grid = WINDOW_BARS * INTERVAL
    start = 29_220 * grid
    end = start + SHARDS * grid - INTERVAL
    calls = MemoryCallLog()

    async def fetch() -> tuple[int, Any, Any]:
        config = load_section({**host, "seamless_worker_id": "engine-sdk"}, env={})
        provider = await create_provider(
            config,
            fetcher=SyntheticFetcher(seed=7, call_log=calls),
            settings=ProviderSettings(
                strategy=Strategy.AUTO_BACKFILL,
                backfill=BackfillConfig(window_bars=WINDOW_BARS, max_concurrent_requests=2),
                metrics=SeamlessMetrics(CollectorRegistry()),
            ),
            env={},
        )
        try:
            # dev profile: an unreachable coordinator would silently be the in-memory one
            assert isinstance(provider.coordinator, CoordinatorClient)
            result = await provider.fetch(start, end, node_id=node_id, interval=INTERVAL)
            publisher = provider.publisher
            assert publisher is not None
            assert publisher.drain(30), "artifacts not published within 30 s"
            assert publisher.failed == 0, publisher.last_error
            return result.frame.height, result.metadata.backfill, provider.store.table  # type: ignore[attr-defined]
        finally:
            await provider.aclose()
            if provider.coordinator is not None:
                await provider.coordinator.aclose()  # type: ignore[attr-defined]
            await provider.store.aclose()

    height, report, table = asyncio.run(fetch())
    bars = SHARDS * WINDOW_BARS
    assert height == bars
    assert report is not None and len(report.completed) == SHARDS
    assert report.completion_ratio == pytest.approx(1.0)
    fetched = {key[2] for key, n in calls.counts().items() if key[0] == node_id}
    assert len(fetched) == SHARDS
    # the rows are in the containerised QuestDB (over its published PG wire)
    with psycopg.connect(host["questdb_dsn"], autocommit=True) as conn:
        row = conn.execute(
            f"SELECT count(), count_distinct(ts) FROM {table} WHERE node_id = %s", (node_id,)
        ).fetchone()
    assert row is not None and (int(row[0]), int(row[1])) == (bars, bars)
    # the artifacts are in MinIO under the SDK's own prefix, read with the SDK's own key
    from minio import Minio

    parts = urlsplit(host["artifact_endpoint"])
    s3 = Minio(
        parts.netloc,
        access_key=host["artifact_access_key"],
        secret_key=host["artifact_secret_key"],
        secure=parts.scheme == "https",
        region="us-east-1",  # no GetBucketLocation: the SDK's policy grants only its prefix
    )
    keys = [o.object_name for o in s3.list_objects(host["artifact_bucket"], "artifacts/", True)]
    assert any(node_id in k for k in keys), keys[:20]
    # ... and that key is held to its prefix: the declared policy, not the root's rights
    from minio.error import S3Error

    with pytest.raises(S3Error, match="AccessDenied"):
        s3.put_object(host["artifact_bucket"], "gateway/probe", io.BytesIO(b"x"), 1)
