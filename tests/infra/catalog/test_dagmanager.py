"""infra/catalog/dagmanager.py: an in-memory graph in dev, Neo4j in prod."""

from __future__ import annotations

import pytest
import yaml

from infra.catalog import dagmanager
from tests.infra.harness import rendered, stack_catalog

pytestmark = pytest.mark.unit


def test_dev_keeps_its_graph_in_memory() -> None:
    svc = stack_catalog("dev").get(dagmanager.NAME)
    needs, text = rendered(svc, "config.yml")
    doc = yaml.safe_load(text)["dagmanager"]
    assert doc["neo4j_dsn"] is None and doc["neo4j_password"] == ""
    assert "neo4j" not in needs and "neo4j" not in svc.connects_to


def test_prod_dials_neo4j_and_serves_both_ports() -> None:
    svc = stack_catalog("prod").get(dagmanager.NAME)
    needs, text = rendered(svc, "config.yml")
    doc = yaml.safe_load(text)["dagmanager"]
    assert doc["neo4j_dsn"] == "bolt://neo4j:7687" and doc["neo4j_password"] == "pw-neo4j"
    assert "neo4j" in needs and "neo4j" in svc.connects_to
    assert doc["redis_dsn"].endswith("@redis:6379/1")
    assert (doc["http_port"], doc["grpc_port"]) == (svc.port("http"), svc.port("grpc"))
    assert doc["controlbus_queue_topic"] == "qmtl.controlbus.queue"
