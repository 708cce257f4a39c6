"""infra/catalog/coordinator.py: its settings and tokens files, its edges, and egress to
managed dependencies only it dials."""

from __future__ import annotations

import pytest
import yaml

from infra.catalog import coordinator
from tests.infra.harness import (
    MANAGED_SECRETS,
    AnyCredentials,
    prod_managed_config,
    rendered,
    stack_catalog,
)

pytestmark = pytest.mark.unit


def test_the_workers_token_and_the_operators_are_apart() -> None:
    tokens = coordinator.tokens(AnyCredentials())
    assert tokens == {
        "seamless-sdk": "pw-coordinator.token",
        "ops": {"token": "pw-coordinator.operator_token", "roles": ["operator"]},
    }


def test_its_settings_file_carries_every_dsn() -> None:
    svc = stack_catalog("dev").get(coordinator.NAME)
    _, text = rendered(svc, "coordinator.yml")
    settings = yaml.safe_load(text)
    assert settings["REDIS_DSN"] == (
        "redis://seamless-coordinator:pw-redis.seamless-coordinator@redis:6379/3"
    )
    assert settings["QUESTDB_DSN"] == "postgresql://admin:pw-questdb@questdb:8812/qmtl"
    assert svc.connects_to == ("redis", "questdb", "minio") and svc.external_ports == ()
    assert svc.env["COORDINATOR_KEY_PREFIX"] == "seamless:"
    assert svc.build_context == "sdk"  # dev builds it from sdk/Dockerfile


def test_managed_ledger_and_bucket_are_egress() -> None:
    svc = stack_catalog("prod", prod_managed_config(), MANAGED_SECRETS).get(coordinator.NAME)
    assert svc.connects_to == ("redis",)
    assert svc.external_ports == (443, 8812)
    _, text = rendered(svc, "coordinator.yml")
    assert yaml.safe_load(text)["QUESTDB_DSN"].startswith("postgresql://seamless:pw-questdb@")


def test_no_coordinator_url_no_coordinator() -> None:
    cat = stack_catalog("dev", {"seamless": {"profile": "dev"}})
    assert coordinator.NAME not in cat
