"""infra/catalog/gateway.py: in memory in dev, on its own Postgres database in prod."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.catalog import ServiceSpec, gateway
from tests.infra.harness import rendered, stack_catalog

pytestmark = pytest.mark.unit


def _gateway(stack: str) -> tuple[ServiceSpec, tuple[str, ...], Any]:
    svc = stack_catalog(stack).get(gateway.NAME)
    needs, text = rendered(svc, "config.yml")
    return svc, needs, yaml.safe_load(text)["gateway"]


def test_dev_runs_in_memory_without_postgres() -> None:
    svc, needs, doc = _gateway("dev")
    assert doc["database_backend"] == "memory" and doc["database_dsn"] == "memory://"
    assert "postgres.gateway" not in needs
    assert "postgres" not in svc.connects_to and svc.grants.postgres_database is None
    assert svc.replicas == 1


def test_prod_owns_its_postgres_database_and_runs_two_replicas() -> None:
    svc, needs, doc = _gateway("prod")
    assert doc["database_dsn"] == "postgresql://gateway:pw-postgres.gateway@postgres:5432/gateway"
    assert "postgres.gateway" in needs
    assert svc.grants.postgres_database == "gateway" and "postgres" in svc.connects_to
    assert svc.replicas == 2


def test_its_redis_user_and_topics_are_its_own() -> None:
    svc, needs, doc = _gateway("prod")
    assert doc["redis_dsn"] == "redis://gateway:pw-redis.gateway@redis:6379/0"
    assert {"redis.gateway", "controlbus.gateway"} <= set(needs)
    assert doc["controlbus_topics"] == [
        "qmtl.controlbus.activation",
        "qmtl.controlbus.policy",
        "qmtl.controlbus.queue",
        "qmtl.controlbus.sentinel_weight",
    ]
    assert doc["worldservice_url"] == "http://worldservice:8443"
    assert svc.grants.kafka is not None and svc.grants.kafka.group_prefix == "gateway."
