"""`config validate --target gateway|dagmanager` contacting real servers: Redis PING and a
PostgreSQL-wire SELECT 1 (QuestDB speaks it) pass; a dead broker, a dead Neo4j, and a
server that is not Neo4j fail naming the key; passwords stay masked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from seamless.cli import app
from typer.testing import CliRunner

from lab.servers import QuestDBServer, RedisServer, free_port

pytestmark = pytest.mark.integration


def test_gateway_and_dagmanager_reachability(
    tmp_path: Path, redis_server: RedisServer, questdb_server: QuestDBServer
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    doc = {
        "seamless": {},
        "controlbus": {"brokers": [dead], "topic_prefix": "qmtl.controlbus."},
        "gateway": {
            "redis_dsn": redis_server.url,
            "database_backend": "postgres",
            "database_dsn": questdb_server.pg_dsn,
            "controlbus_brokers": [dead],
            "controlbus_topics": ["qmtl.controlbus.queue"],
            "worldservice_url": "http://127.0.0.1:8443",
        },
        "dagmanager": {
            "neo4j_dsn": f"bolt://neo4j:pw-s3cret@{redis_server.url.split('//')[1].split('/')[0]}",
            "neo4j_password": "pw-s3cret",
            "redis_dsn": redis_server.url,
            "kafka_dsn": dead,
            "controlbus_dsn": dead,
            "controlbus_queue_topic": "qmtl.controlbus.queue",
        },
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    got = CliRunner().invoke(app, ["config", "validate", "--config", str(path), "--target", "all"])
    out = got.output
    assert got.exit_code == 1, out
    assert "Traceback" not in out and "pw-s3cret" not in out
    lines = out.splitlines()

    def line(key: str) -> str:
        return next(text for text in lines if f" {key}" in text or text.startswith(key))

    assert "OK" in line("gateway.redis_dsn") and "PING ok" in line("gateway.redis_dsn")
    assert "SELECT 1" in line("gateway.database_dsn")
    assert "ERROR" in line(f"gateway.controlbus_brokers {dead}")
    assert "unreachable" in line(f"dagmanager.kafka_dsn {dead}")
    neo4j = line("dagmanager.neo4j_dsn")
    assert "ERROR" in neo4j and "Bolt" in neo4j, neo4j
