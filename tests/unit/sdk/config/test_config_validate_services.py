"""`config validate --target gateway|dagmanager|worldservice|all` on the sections the bundle
renders into each QMTL service's config.yml (offline: nothing contacted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from seamless.cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.unit

PW = "pw-s3cret"
BUS = {
    "brokers": ["controlbus:9092"],
    "topic_prefix": "qmtl.controlbus.",
    "sasl_mechanism": "SCRAM-SHA-256",
    "sasl_username": "gateway",
    "sasl_password": PW,
}
GATEWAY = {
    "redis_dsn": f"redis://gateway:{PW}@redis:6379/1",
    "database_backend": "postgres",
    "database_dsn": f"postgresql://gateway:{PW}@postgres:5432/gateway",
    "controlbus_brokers": ["controlbus:9092"],
    "controlbus_topics": ["qmtl.controlbus.activation", "qmtl.controlbus.queue"],
    "worldservice_url": "http://worldservice:8443",
    "port": 8080,
}
DAGMANAGER = {
    "neo4j_dsn": "bolt://neo4j:7687",
    "neo4j_user": "neo4j",
    "neo4j_password": PW,
    "redis_dsn": f"redis://dagmanager:{PW}@redis:6379/2",
    "kafka_dsn": "controlbus:9092",
    "controlbus_dsn": "controlbus:9092",
    "controlbus_queue_topic": "qmtl.controlbus.queue",
    "grpc_port": 50051,
    "http_port": 8101,
}
WORLDSERVICE = {
    "dsn": f"postgresql://worldservice:{PW}@postgres:5432/worldservice",
    "redis": f"redis://worldservice:{PW}@redis:6379/3",
    "bind": {"host": "0.0.0.0", "port": 8443},
}


def _run(tmp_path: Path, doc: dict[str, Any], target: str) -> tuple[int, str]:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    args = ["config", "validate", "--config", str(path), "--target", target, "--offline"]
    got = CliRunner().invoke(app, args)
    assert "Traceback" not in got.output
    assert PW not in got.output, got.output
    return got.exit_code, got.output


@pytest.mark.parametrize(
    ("target", "section"),
    [("gateway", GATEWAY), ("dagmanager", DAGMANAGER), ("worldservice", WORLDSERVICE)],
)
def test_rendered_sections_pass_offline(
    tmp_path: Path, target: str, section: dict[str, Any]
) -> None:
    code, out = _run(tmp_path, {target: section, "controlbus": BUS}, target)
    assert code == 0, out
    assert "not contacted (offline)" in out
    assert ":***@" in out


def test_all_covers_every_present_service_section(tmp_path: Path) -> None:
    doc = {"seamless": {}, "gateway": GATEWAY, "dagmanager": DAGMANAGER, "controlbus": BUS}
    code, out = _run(tmp_path, doc, "all")
    assert code == 0, out
    assert "gateway.redis_dsn" in out and "dagmanager.neo4j_dsn" in out
    assert "worldservice." not in out


@pytest.mark.parametrize(
    ("target", "change", "key", "expected"),
    [
        ("gateway", {"redis_dsn": "http://redis:6379"}, "gateway.redis_dsn", "redis://"),
        ("gateway", {"database_dsn": "postgresql://a b/x"}, "gateway.database_dsn", "postgresql"),
        (
            "gateway",
            {"controlbus_brokers": ["controlbus"]},
            "gateway.controlbus_brokers",
            "host:port",
        ),
        ("gateway", {"controlbus_topics": ["other.queue"]}, "gateway.controlbus_topics", "prefix"),
        ("gateway", {"database_backend": "mongo"}, "gateway.database_backend", "postgres"),
        ("dagmanager", {"neo4j_dsn": "http://neo4j:7474"}, "dagmanager.neo4j_dsn", "bolt://"),
        ("dagmanager", {"neo4j_password": ""}, "dagmanager.neo4j_password", "Neo4j password"),
        ("dagmanager", {"grpc_port": True}, "dagmanager.grpc_port", "1 to 65535"),
        ("worldservice", {"redis": None}, "worldservice.redis", "redis://"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, target: str, change: dict[str, Any], key: str, expected: str
) -> None:
    sections: dict[str, dict[str, Any]] = {
        "gateway": GATEWAY,
        "dagmanager": DAGMANAGER,
        "worldservice": WORLDSERVICE,
    }
    base = sections[target]
    code, out = _run(tmp_path, {target: {**base, **change}, "controlbus": BUS}, target)
    assert code == 1, out
    errors = [line for line in out.splitlines() if "  ERROR  " in line]
    assert any(key in line and expected in line for line in errors), out


def test_bad_topic_prefix_is_an_error(tmp_path: Path) -> None:
    code, out = _run(
        tmp_path, {"gateway": GATEWAY, "controlbus": {**BUS, "topic_prefix": "qmtl"}}, "gateway"
    )
    assert code == 1 and "controlbus.topic_prefix" in out


def test_requested_section_missing_exits_2(tmp_path: Path) -> None:
    code, out = _run(tmp_path, {"seamless": {}}, "dagmanager")
    assert code == 2 and "no 'dagmanager' section" in out
