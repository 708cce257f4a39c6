"""infra/catalog/registry.py: the tables derived from the service entries, which services a
stack runs, and the SDK section and QMTL documents resolved on the catalog."""

from __future__ import annotations

import pytest
import yaml

from infra import catalog
from infra.catalog import ENTRIES, build_catalog, qmtl_config_document
from infra.stack_config import DEFAULT_IMAGES, parse_stack_config
from tests.infra.harness import (
    MANAGED_SECRETS,
    AnyCredentials,
    prod_managed_config,
    stack_catalog,
    stack_file_config,
)

pytestmark = pytest.mark.unit


def test_each_service_is_one_entry() -> None:
    names = [e.name for e in ENTRIES]
    assert len(set(names)) == len(names) == 10
    assert tuple(names) == catalog.ALL_SERVICES


def test_image_defaults_come_from_the_entries() -> None:
    for e in ENTRIES:
        for key, ref in e.images.items():
            assert DEFAULT_IMAGES[key] == ref
    assert set(DEFAULT_IMAGES) == {*catalog.DEFAULT_IMAGES, "prometheus"}
    assert "minio-client" in catalog.DEFAULT_IMAGES  # the MinIO bootstrap Job's image


def test_grants_are_one_per_service_and_never_shared() -> None:
    users = [g.user for g in catalog.REDIS_GRANTS]
    assert users == ["gateway", "dagmanager", "worldservice", "seamless-coordinator"]
    assert len({g.key_prefix for g in catalog.REDIS_GRANTS}) == len(users)
    assert len({g.db for g in catalog.REDIS_GRANTS}) == len(users)
    # the artifact identities first: the order deployed bootstrap Jobs mount them in
    identities = [g.identity for g in catalog.OBJECT_STORE_GRANTS]
    assert identities == ["seamless-coordinator", "seamless-sdk", "gateway", "dagmanager"]
    assert catalog.KAFKA_USERS == catalog.QMTL_SERVICES == ("gateway", "dagmanager", "worldservice")


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        ("dev", set(catalog.ALL_SERVICES) - {"postgres", "neo4j"}),
        ("prod", set(catalog.ALL_SERVICES)),
        ("partial", {"seamless-coordinator", "redis", "questdb", "minio"}),
    ],
)
def test_each_stack_runs_its_services(stack: str, expected: set[str]) -> None:
    cat = stack_catalog(stack)
    assert set(cat.names) == expected
    assert list(cat.names) == [n for n in catalog.ALL_SERVICES if n in expected]  # registry order
    for svc in cat:
        for probe in (svc.readiness, svc.liveness):
            if probe.path is not None:
                assert (svc.name, probe.port, probe.path) in catalog.REAL_HTTP_ROUTES
        assert set(svc.connects_to) <= set(cat.names)


def test_managed_overrides_drop_their_services_and_become_endpoints() -> None:
    cat = stack_catalog(
        "prod",
        {
            **prod_managed_config(),
            "controlbus": {"external": True, "brokers": ["kafka-1.example:9093"]},
            "redis": {"external": True, "url": "redis.managed.example"},
        },
        {**MANAGED_SECRETS, "redisAdminPassword": "managed-redis-admin-0123"},
    )
    assert not {"questdb", "minio", "redis", "controlbus"} & set(cat.names)
    ep = cat.endpoints
    assert (ep.redis_host, ep.redis_port) == ("redis.managed.example", 6379)
    assert ep.kafka_brokers == ("kafka-1.example:9093",)
    assert ep.questdb_dsn == "postgresql://qdb.managed.example:8812/qmtl"
    assert ep.artifact_endpoint == "https://s3.eu-west-1.amazonaws.com"
    assert cat.get("gateway").external_ports == (6379, 9093)


def test_the_sdk_section_carries_the_schema_registry_and_its_mode() -> None:
    shipped = stack_file_config("prod")
    section = stack_catalog("prod").sdk_section
    assert section["validation_mode"] == "canary" and "schema_registry_url" not in section

    url = "http://registry.internal:8080/apis/ccompat/v6"
    seamless = {**shipped["seamless"], "schema_registry_url": url, "validation_mode": "strict"}
    section = stack_catalog("prod", {"seamless": seamless}).sdk_section
    assert section["schema_registry_url"] == url and section["validation_mode"] == "strict"


def test_the_coordinator_url_is_filled_only_when_the_stack_runs_it() -> None:
    config = stack_file_config("dev")
    assert stack_catalog("dev").sdk_section["coordinator_url"] == "http://seamless-coordinator:8080"
    config["seamless"] = {k: v for k, v in config["seamless"].items() if k != "coordinator_url"}
    section = build_catalog(parse_stack_config(config, stack="dev")).sdk_section
    assert "coordinator_url" not in section


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("service", ["gateway", "dagmanager", "worldservice"])
def test_qmtl_config_document_is_what_the_service_is_handed(stack: str, service: str) -> None:
    cat = stack_catalog(stack)
    creds = AnyCredentials()
    item = cat.get(service).secrets[0]
    in_memory = stack == "dev"
    doc = qmtl_config_document(cat.config, cat.endpoints, service, creds, in_memory=in_memory)
    assert yaml.safe_load(item.render(creds)) == doc
    assert doc["controlbus"]["sasl_username"] == service


def test_qmtl_config_document_refuses_a_service_that_is_not_qmtls() -> None:
    cat = stack_catalog("dev")
    with pytest.raises(KeyError, match="not one of QMTL's services"):
        qmtl_config_document(cat.config, cat.endpoints, "redis", {}, in_memory=True)
