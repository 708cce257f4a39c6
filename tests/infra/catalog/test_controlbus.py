"""infra/catalog/controlbus.py: Redpanda nodes that find each other, one SASL user per QMTL
service, and no bus where nothing uses it."""

from __future__ import annotations

import pytest

from infra.catalog import KAFKA_USERS, controlbus
from tests.infra.harness import stack_catalog

pytestmark = pytest.mark.unit


def _arg(args: tuple[str, ...], name: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}="))


def test_kubernetes_nodes_advertise_their_pod_names_under_the_headless_service() -> None:
    svc = stack_catalog("prod").get(controlbus.NAME)
    headless = "controlbus-headless.seamless.svc.cluster.local"
    assert svc.replicas == 3 and svc.pod_name_env == "POD_NAME"
    assert _arg(svc.args, "advertise-rpc-addr") == f"$(POD_NAME).{headless}:33145"
    assert _arg(svc.args, "seeds") == ",".join(f"controlbus-{i}.{headless}:33145" for i in range(3))


def test_docker_runs_one_node_under_its_container_name() -> None:
    svc = stack_catalog("dev").get(controlbus.NAME)
    assert svc.replicas == 1
    assert _arg(svc.args, "seeds") == "controlbus:33145"
    assert _arg(svc.args, "advertise-kafka-addr") == "internal://controlbus:9092"


def test_every_qmtl_service_gets_a_user_and_prefixed_acls() -> None:
    svc = stack_catalog("prod").get(controlbus.NAME)
    assert {s.key for s in svc.secrets} == {"controlbus-admin", *KAFKA_USERS}
    (job,) = svc.jobs
    script = job.config_files[0].content
    for user in KAFKA_USERS:
        assert f"--allow-principal User:{user} --operation read --group {user}." in script


@pytest.mark.parametrize(
    "changes",
    [{"qmtl": False}, {"controlbus": {"external": True, "brokers": ["kafka.example:9093"]}}],
)
def test_no_bus_without_qmtl_or_with_a_managed_kafka(changes: dict[str, object]) -> None:
    assert controlbus.NAME not in stack_catalog("dev", changes)
