"""infra/catalog/questdb.py: the ledger on the PostgreSQL wire, or a managed one."""

from __future__ import annotations

import pytest

from infra.catalog import questdb
from tests.infra.harness import MANAGED_SECRETS, prod_managed_config, rendered, stack_catalog

pytestmark = pytest.mark.unit


def test_questdb_serves_pg_wire_with_its_generated_password() -> None:
    svc = stack_catalog("dev").get(questdb.NAME)
    needs, conf = rendered(svc, "server.conf")
    assert needs == ("questdb",) and "pg.password=pw-questdb\n" in conf
    assert svc.scheme == "postgresql" and svc.ports[0].port == questdb.PG
    assert svc.readiness.port == svc.metrics_port == questdb.HEALTH


def test_a_managed_questdb_is_only_a_dsn() -> None:
    cat = stack_catalog("prod", prod_managed_config(), MANAGED_SECRETS)
    assert questdb.NAME not in cat
    assert questdb.user(cat.config) == "seamless"
    assert cat.endpoints.questdb_dsn == "postgresql://qdb.managed.example:8812/qmtl"
