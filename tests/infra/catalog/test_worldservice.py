"""infra/catalog/worldservice.py: SQLite in dev, its own Postgres database in prod, and a
TCP probe (it documents no health route)."""

from __future__ import annotations

import pytest
import yaml

from infra.catalog import worldservice
from tests.infra.harness import rendered, stack_catalog

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("stack", "dsn"),
    [
        ("dev", "sqlite:////tmp/worldservice.db"),
        ("prod", "postgresql://worldservice:pw-postgres.worldservice@postgres:5432/worldservice"),
    ],
)
def test_its_database_follows_the_profile(stack: str, dsn: str) -> None:
    svc = stack_catalog(stack).get(worldservice.NAME)
    _, text = rendered(svc, "config.yml")
    doc = yaml.safe_load(text)["worldservice"]
    assert doc["dsn"] == dsn
    assert doc["bind"] == {"host": "0.0.0.0", "port": 8443}


def test_probes_are_tcp() -> None:
    svc = stack_catalog("prod").get(worldservice.NAME)
    assert svc.readiness.path is None and svc.liveness.path is None
    assert svc.readiness.port == svc.port("http")
