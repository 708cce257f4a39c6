"""Dataset fingerprints and artifact publication to S3 (MinIO or AWS).

Fingerprint (``sha256:<hex>``): the SHA-256 of a canonical document — first line the
compact, sorted-key JSON of ``{"columns": [...], "metadata": {node_id, interval,
coverage_bounds, conformance_version}}``, then one compact JSON object per row in ts order,
``ts`` first and the other columns sorted by name, NaN and inf written as null. Equal data
gives an equal fingerprint whichever process, shard order or column order produced it.

Publication: the frame as Parquet plus a JSON manifest, under
``{prefix}{node_id}/{interval}/{start}-{end}/{fingerprint hex}/``. A fetch never waits for
it: `ArtifactPublisher.submit` puts the artifact on a bounded queue served by a background
thread that retries with backoff (tenacity) and counts what was published, failed or
dropped (queue full). The fetch result is never lost or blocked by the object store.
"""

from __future__ import annotations

import hashlib
import io
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_exponential_jitter

from seamless.data.coverage import Range
from seamless.errors import ArtifactPublishError
from seamless.logging import get_logger
from seamless.metrics import SeamlessMetrics

FINGERPRINT_PREFIX = "sha256:"


def canonical_columns(frame: pl.DataFrame) -> list[str]:
    rest = sorted(c for c in frame.columns if c != "ts")
    return ["ts", *rest] if "ts" in frame.columns else rest


def fingerprint(
    frame: pl.DataFrame,
    *,
    node_id: str,
    interval: int,
    coverage_bounds: list[Range] | list[tuple[int, int]],
    conformance_version: str,
) -> str:
    columns = canonical_columns(frame)
    header = {
        "columns": columns,
        "metadata": {
            "conformance_version": conformance_version,
            "coverage_bounds": [[int(s), int(e)] for s, e in coverage_bounds],
            "interval": interval,
            "node_id": node_id,
        },
    }
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    digest.update(b"\n")
    if frame.height:
        canonical = frame.select(columns)
        floats = [n for n, d in canonical.schema.items() if d in (pl.Float64, pl.Float32)]
        if floats:
            canonical = canonical.with_columns(
                pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c)
                for c in floats
            )
        if "ts" in columns:
            canonical = canonical.sort("ts", maintain_order=True)
        buffer = io.BytesIO()
        canonical.write_ndjson(buffer)
        digest.update(buffer.getbuffer())
    return FINGERPRINT_PREFIX + digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    node_id: str
    interval: int
    start: int
    end: int
    fingerprint: str
    frame: pl.DataFrame
    coverage: list[Range]
    conformance: dict[str, Any] = field(default_factory=dict)

    def key_prefix(self, prefix: str) -> str:
        digest = self.fingerprint.removeprefix(FINGERPRINT_PREFIX)
        return f"{prefix}{self.node_id}/{self.interval}/{self.start}-{self.end}/{digest}/"


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def manifest_for(artifact: Artifact, parquet: bytes, parquet_key: str) -> dict[str, Any]:
    return {
        "fingerprint": artifact.fingerprint,
        "node_id": artifact.node_id,
        "interval": artifact.interval,
        "start": artifact.start,
        "end": artifact.end,
        "coverage_bounds": [[s, e] for s, e in artifact.coverage],
        "rows": artifact.frame.height,
        "columns": {name: str(dtype) for name, dtype in artifact.frame.schema.items()},
        "conformance": artifact.conformance,
        "frame_key": parquet_key,
        "frame_sha256": hashlib.sha256(parquet).hexdigest(),
        "frame_bytes": len(parquet),
        "format": "parquet",
        "published_at": datetime.now(UTC).isoformat(),
    }


class ArtifactPublisher:
    """Publishes artifacts in a background thread; `submit` never blocks.

    ``s3`` is a boto3 S3 client built with the service's own credentials (see
    `s3_client`). Failed publications are retried ``max_attempts`` times with exponential
    backoff and jitter, then counted as failed; a full queue drops (and counts) the
    artifact rather than holding up the fetch.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        prefix: str = "artifacts/",
        max_pending: int = 64,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        metrics: SeamlessMetrics | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.metrics = metrics if metrics is not None else SeamlessMetrics.default()
        self.published = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0
        self.last_error: str | None = None
        self._queue: queue.Queue[Artifact | None] = queue.Queue(maxsize=max_pending)
        self._pending = 0
        self._pending_lock = threading.Condition()
        self._log = get_logger("seamless.artifacts")
        self._thread = threading.Thread(target=self._run, name="seamless-artifacts", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._pending_lock:
            return self._pending

    def submit(self, artifact: Artifact) -> bool:
        """Queue `artifact` for publication; False (and counted) when the queue is full."""
        with self._pending_lock:
            try:
                self._queue.put_nowait(artifact)
            except queue.Full:
                self.dropped += 1
                self.metrics.artifact_publish_total.labels(outcome="dropped").inc()
                self._log.warning(
                    "seamless.artifact.dropped",
                    node_id=artifact.node_id,
                    interval=artifact.interval,
                    start=artifact.start,
                    end=artifact.end,
                    fingerprint=artifact.fingerprint,
                )
                return False
            self._pending += 1
            self.metrics.artifact_publish_pending.set(self._pending)
        return True

    def drain(self, timeout_s: float) -> bool:
        """Wait until nothing is pending; False if `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._pending_lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._pending_lock.wait(left)
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.drain(timeout_s)
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            artifact = self._queue.get()
            if artifact is None:
                return
            started = time.monotonic()
            try:
                self._publish_with_retries(artifact)
            except Exception as exc:  # counted and logged: a publish must never crash the loop
                self.failed += 1
                self.last_error = str(exc)
                self.metrics.artifact_publish_total.labels(outcome="failed").inc()
                self._log.error(
                    "seamless.artifact.failed",
                    node_id=artifact.node_id,
                    interval=artifact.interval,
                    start=artifact.start,
                    end=artifact.end,
                    fingerprint=artifact.fingerprint,
                    error=str(exc),
                )
            else:
                self.published += 1
                labels = {
                    "node_id": artifact.node_id,
                    "interval": str(artifact.interval),
                    "world_id": "",
                }
                self.metrics.artifact_publish_total.labels(outcome="published").inc()
                self.metrics.artifact_publish_latency_ms.labels(**labels).observe(
                    (time.monotonic() - started) * 1000
                )
            finally:
                with self._pending_lock:
                    self._pending -= 1
                    self.metrics.artifact_publish_pending.set(self._pending)
                    self._pending_lock.notify_all()

    def _count_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        self.metrics.artifact_publish_retry_total.inc()

    def _publish_with_retries(self, artifact: Artifact) -> None:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial_s,
                max=self.backoff_max_s,
                jitter=self.backoff_initial_s,
            ),
            before_sleep=self._count_retry,
            reraise=True,
        )
        parquet = parquet_bytes(artifact.frame)
        for attempt in retrying:
            with attempt:
                self.publish_now(artifact, parquet)

    def publish_now(self, artifact: Artifact, parquet: bytes | None = None) -> str:
        """Publish synchronously (one attempt); returns the manifest key."""
        data = parquet if parquet is not None else parquet_bytes(artifact.frame)
        base = artifact.key_prefix(self.prefix)
        frame_key, manifest_key = base + "frame.parquet", base + "manifest.json"
        manifest = manifest_for(artifact, data, frame_key)
        try:
            self.s3.put_object(Bucket=self.bucket, Key=frame_key, Body=data)
            self.s3.put_object(
                Bucket=self.bucket,
                Key=manifest_key,
                Body=json.dumps(manifest, sort_keys=True).encode(),
                ContentType="application/json",
            )
        except Exception as exc:
            raise ArtifactPublishError(
                f"publishing {manifest_key} to bucket {self.bucket!r} failed: {exc}"
            ) from exc
        self.metrics.artifact_bytes_written.labels(
            node_id=artifact.node_id, interval=str(artifact.interval), world_id=""
        ).inc(len(data))
        return manifest_key


def s3_client(
    endpoint: str | None,
    access_key: str | None,
    secret_key: str | None,
    *,
    region: str = "us-east-1",
    connect_timeout_s: float = 2.0,
    read_timeout_s: float = 10.0,
) -> Any:
    """A boto3 S3 client; `endpoint` None means AWS. Path-style addressing for MinIO.
    Retries are ours (tenacity), so botocore's are kept to one attempt."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
