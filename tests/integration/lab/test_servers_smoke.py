"""Each local server does real work: the foundation every other suite stands on."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import boto3
import httpx
import psycopg
import pytest
import redis
from botocore.config import Config
from questdb import Sender, TimestampNanos

from lab.servers import (
    MinioServer,
    QuestDBServer,
    RedisServer,
    ServerStartError,
    ToxiproxyServer,
    free_port,
)

pytestmark = pytest.mark.integration


def test_redis_set_get(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    key = f"smoke:{uuid.uuid4()}"
    client.set(key, "bar")
    assert client.get(key) == b"bar"


def _wait_for_rows(dsn: str, query: str, expected: int, deadline_s: float = 30.0) -> list[tuple]:
    # WAL tables apply writes asynchronously: poll until they are visible or time runs out.
    end = time.monotonic() + deadline_s
    rows: list[tuple] = []
    while time.monotonic() < end:
        with psycopg.connect(dsn, autocommit=True) as conn:
            try:
                rows = conn.execute(query).fetchall()
            except psycopg.errors.Error:
                rows = []
        if len(rows) >= expected:
            return rows
        time.sleep(0.1)
    return rows


def test_questdb_ilp_write_then_pg_read(questdb_server: QuestDBServer) -> None:
    table = f"smoke_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(questdb_server.pg_dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {table} (sym SYMBOL, price DOUBLE, ts TIMESTAMP) "
            "TIMESTAMP(ts) PARTITION BY DAY WAL"
        )
    with Sender.from_conf(questdb_server.ilp_http_conf) as sender:
        for i in range(3):
            sender.row(
                table,
                symbols={"sym": "BTC"},
                columns={"price": 100.0 + i},
                at=TimestampNanos(1_700_000_000_000_000_000 + i * 60_000_000_000),
            )
    rows = _wait_for_rows(
        questdb_server.pg_dsn, f"SELECT sym, price FROM {table} ORDER BY ts", expected=3
    )
    assert rows == [("BTC", 100.0), ("BTC", 101.0), ("BTC", 102.0)]


def test_minio_bucket_put_get(minio_server: MinioServer) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=minio_server.endpoint,
        aws_access_key_id=minio_server.access_key,
        aws_secret_access_key=minio_server.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="artifacts/hello.txt", Body=b"hello seamless")
    body = s3.get_object(Bucket=bucket, Key="artifacts/hello.txt")["Body"].read()
    assert body == b"hello seamless"


def _ping_ms(host: str, port: int) -> float:
    client = redis.Redis(host=host, port=port, socket_timeout=5)
    with client:
        client.ping()  # connect outside the measurement
        start = time.perf_counter()
        assert client.ping()
        return (time.perf_counter() - start) * 1000


def test_toxiproxy_latency_on_redis(
    toxiproxy_server: ToxiproxyServer, redis_server: RedisServer
) -> None:
    api = httpx.Client(base_url=toxiproxy_server.api_url, timeout=5)
    listen_port = free_port()
    name = f"redis-{uuid.uuid4().hex[:6]}"
    created = api.post(
        "/proxies",
        json={
            "name": name,
            "listen": f"127.0.0.1:{listen_port}",
            "upstream": f"{redis_server.host}:{redis_server.port}",
            "enabled": True,
        },
    )
    assert created.status_code == 201, created.text
    try:
        baseline = _ping_ms("127.0.0.1", listen_port)
        toxic = api.post(
            f"/proxies/{name}/toxics",
            json={
                "name": "slow",
                "type": "latency",
                "stream": "downstream",
                "attributes": {"latency": 100, "jitter": 0},
            },
        )
        assert toxic.status_code == 200, toxic.text
        slowed = _ping_ms("127.0.0.1", listen_port)
        assert slowed >= 100.0, f"latency toxic added only {slowed:.1f} ms"
        assert api.delete(f"/proxies/{name}/toxics/slow").status_code == 204
        recovered = _ping_ms("127.0.0.1", listen_port)
        assert recovered < 100.0, f"PING still slow after removing the toxic: {recovered:.1f} ms"
        assert baseline < 100.0
    finally:
        api.delete(f"/proxies/{name}")


def test_taken_port_is_not_an_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        server = RedisServer(workdir=tmp_path)
        server.port = taken  # as if another process grabbed the port after we picked it
        try:
            server.start()
            assert server.port != taken
            assert server.ready()
        finally:
            server.cleanup()


class _MisconfiguredRedis(RedisServer):
    def command(self) -> list[str]:
        return [*super().command(), "--no-such-directive", "1"]


def test_failed_start_shows_the_server_log(tmp_path: Path) -> None:
    server = _MisconfiguredRedis(workdir=tmp_path)
    with pytest.raises(ServerStartError) as error:
        server.start()
    assert "no-such-directive" in str(error.value)
    assert str(server.log_path) in str(error.value)
    assert not server.running
