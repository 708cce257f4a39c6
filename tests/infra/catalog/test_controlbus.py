"""infra/catalog/controlbus.py: Apache Kafka (KRaft) nodes that find each other, one SCRAM
user per QMTL service with ACLs on the topic prefix, no password in any rendered file, and
no bus where nothing uses it."""

from __future__ import annotations

import re

import pytest

from infra.catalog import KAFKA_USERS, controlbus
from tests.infra.harness import stack_catalog

pytestmark = pytest.mark.unit


def _properties(svc: object) -> dict[str, str]:
    files = {c.key: c.content for c in svc.config_files}  # type: ignore[attr-defined]
    return dict(
        line.split("=", 1) for line in files["server.properties"].splitlines() if "=" in line
    )


def _start(svc: object) -> str:
    return next(c.content for c in svc.config_files if c.key == "start.sh")  # type: ignore[attr-defined]


def test_kubernetes_nodes_form_one_quorum_under_the_headless_service() -> None:
    svc = stack_catalog("prod").get(controlbus.NAME)
    headless = "controlbus-headless.seamless.svc.cluster.local"
    assert svc.replicas == 3 and svc.pod_name_env == "POD_NAME"
    props = _properties(svc)
    assert props["controller.quorum.voters"] == ",".join(
        f"{i}@controlbus-{i}.{headless}:9093" for i in range(3)
    )
    assert props["default.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
    # each node: its id from its pod name, advertised under its own DNS name
    start = _start(svc)
    assert 'id="${name##*-}"' in start and f"INTERNAL://$name.{headless}:9092" in start
    assert "HOST://" not in start and "kafka-host" not in {p.name for p in svc.ports}


def test_docker_runs_one_node_under_its_container_name() -> None:
    svc = stack_catalog("dev").get(controlbus.NAME)
    props = _properties(svc)
    assert svc.replicas == 1 and props["controller.quorum.voters"] == "0@controlbus:9093"
    # host clients get an address they can reach: the HOST listener at the published port
    assert "INTERNAL://controlbus:9092,HOST://127.0.0.1:9094" in _start(svc)
    assert [(p.name, p.host_port) for p in svc.ports] == [
        ("kafka", None),
        ("controller", None),
        ("kafka-host", 9094),
    ]


def test_only_the_admin_is_a_superuser_and_nothing_is_open_by_default() -> None:
    props = _properties(stack_catalog("prod").get(controlbus.NAME))
    assert props["super.users"] == "User:controlbus-admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    protocols = props["listener.security.protocol.map"].split(",")
    assert all(p.endswith(":SASL_PLAINTEXT") for p in protocols)  # no unauthenticated listener


def test_every_qmtl_service_gets_a_user_and_prefixed_acls() -> None:
    svc = stack_catalog("prod").get(controlbus.NAME)
    assert {s.key for s in svc.secrets} == {"controlbus-admin", *KAFKA_USERS}
    (job,) = svc.jobs
    script = next(c.content for c in job.config_files if c.key == "acl-bootstrap.sh")
    for user in KAFKA_USERS:
        assert f"--entity-name {user} --add-config" in script
        assert (
            f"--allow-principal User:{user} --operation read --operation write "
            "--operation describe --operation create --topic qmtl.controlbus. "
            "--resource-pattern-type prefixed"
        ) in script
        assert f"--allow-principal User:{user} --operation read --group {user}." in script


def test_no_password_is_rendered_into_a_file_or_onto_a_command_line() -> None:
    svc = stack_catalog("prod").get(controlbus.NAME)
    (job,) = svc.jobs
    texts = [c.content for c in (*svc.config_files, *job.config_files)]
    lines = [line for text in texts for line in text.splitlines()]
    # passwords only by reference: the secret files, read at run time (the sed line masks
    # the tool's output)
    for line in (x for x in lines if not x.startswith("sed -e 's/password=")):
        for ref in re.findall(r"password=(?:\$\([^)]*\)|\S*)", line):
            assert "${dir:/run/secrets/controlbus:" in ref or "$(cat /run/secrets/" in ref, ref
    # what holds a password is a Java argument file written by the shell's printf
    script = next(c.content for c in job.config_files if c.key == "acl-bootstrap.sh")
    for line in script.splitlines():
        if "$(cat /run/secrets/controlbus/" in line:
            assert line.startswith("printf '%s\\n' ") and line.endswith(".args"), line
    assert "sed -e 's/password=[^],]*/password=<hidden>/g'" in script


def test_the_cluster_id_is_stable_per_stack() -> None:
    a = controlbus.cluster_id(stack_catalog("prod").config)
    assert a == controlbus.cluster_id(stack_catalog("prod").config)
    assert a != controlbus.cluster_id(stack_catalog("dev").config)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", a)


@pytest.mark.parametrize(
    "changes",
    [{"qmtl": False}, {"controlbus": {"external": True, "brokers": ["kafka.example:9093"]}}],
)
def test_no_bus_without_qmtl_or_with_a_managed_kafka(changes: dict[str, object]) -> None:
    assert controlbus.NAME not in stack_catalog("dev", changes)
