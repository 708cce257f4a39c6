"""The bundle's shared dependencies (Postgres, Neo4j, the ControlBus on Apache Kafka) on a
real dockerd, exactly as stack `deps` (Pulumi.deps.yaml) declares them, and each service's
isolation on them proven with real clients.

The declarations come from the program itself under the recording mocks (as for the
partial stack, see test_partial_stack.py): the network, these services' volumes, files
containers, service containers and the ControlBus's ACL job (a container run to
completion) are created by lab/docker_stack.py with the recorded inputs, in the catalog's
dependency order. QMTL's own services, which cannot be built here, and the services the
partial stack already proves are left out. Every declared health check must pass within
the time its own timings allow and the ACL job must exit 0; then, with the credentials the
program generated (the secret files it uploads):

- each Postgres role reaches its own database and is refused another's;
- each QMTL service's Kafka user creates, produces and consumes under the stack's topic
  prefix with its own consumer-group prefix, and is refused outside them;
- Neo4j answers queries with the generated password only (Community has one user).

Everything is removed afterwards, also on failure. Names carry a run id and the declared
host ports (Postgres 5432, Neo4j 7474/7687, the ControlBus's host listener 9094) differ
from the partial stack's, so both can be up in one pytest session.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from images.build import Builder, build_stack, docker_cli, stack_images
from infra.catalog import KAFKA_USERS, controlbus, neo4j, postgres
from infra.catalog.registry import POSTGRES_DATABASES
from infra.platforms.docker import dependency_waves, files_dirs
from lab.docker_engine import DockerEngine
from lab.docker_stack import CONTAINER, NETWORK, VOLUME, DockerStack, is_job
from tests.engine.docker.conftest import (
    assert_running_as_declared,
    brought_up,
    declarations,
    log,
)
from tests.infra.harness import stack_catalog

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]

STACK = "deps"
RUN = ("controlbus", "postgres", "neo4j")
CLIENT_TIMEOUT_S = 30.0


def _service(resource: dict[str, Any]) -> str | None:
    labels = resource["inputs"].get("labels") or []
    return next((x["value"] for x in labels if x["label"] == "seamless-stack"), None)


@pytest.fixture(scope="module")
def deps_declared() -> dict[str, Any]:
    return declarations(STACK)


@pytest.fixture(scope="module")
def resources(deps_declared: dict[str, Any]) -> list[dict[str, Any]]:
    """The stack's network and, of its services, those in RUN: their volumes, files
    containers, containers and jobs, inputs as declared."""
    kept = [
        r
        for r in deps_declared["resources"]
        if r["type"] == NETWORK or (r["type"] in (VOLUME, CONTAINER) and _service(r) in RUN)
    ]
    assert {_service(r) for r in kept if r["type"] == CONTAINER} == set(RUN)
    return kept


@pytest.fixture(scope="module")
def deps_images(engine: DockerEngine) -> Builder:
    return build_stack(STACK, with_toxiproxy=False, builder=Builder(log=log), services=RUN)


@pytest.fixture(scope="module")
def deps(
    engine: DockerEngine, deps_images: Builder, resources: list[dict[str, Any]]
) -> Iterator[DockerStack]:
    waves = [[s for s in wave if s in RUN] for wave in dependency_waves(stack_catalog(STACK))]
    with brought_up(resources, [w for w in waves if w], name="deps-stack") as real:
        yield real


def uploaded(stack: DockerStack, path: str) -> str:
    """The content the program uploads at `path` (a generated secret), from its declarations."""
    for inputs in stack.containers().values():
        for upload in inputs.get("uploads") or []:
            if upload["file"] == path:
                return str(upload["content"])
    raise KeyError(f"nothing declared uploads {path}")


def host_port(stack: DockerStack, container: str, internal: int) -> int:
    ports = stack.containers()[container].get("ports") or []
    return next(int(p["external"]) for p in ports if int(p["internal"]) == internal)


# --- the declarations, made real ----------------------------------------------------------


def test_images_are_the_stack_files_refs(deps_images: Builder, deps: DockerStack) -> None:
    refs = stack_images(STACK)
    used = {c["image"] for c in deps.containers().values()}
    assert used == {refs[s] for s in RUN}
    assert {b.ref for b in deps_images.results.values()} >= used


def test_every_declared_health_check_passes_and_the_acl_job_exits_0(deps: DockerStack) -> None:
    declared = deps.containers()
    jobs = {n for n, c in declared.items() if is_job(c)}
    assert jobs == {controlbus.ACL_JOB}
    started = {n for n, c in declared.items() if c.get("start", True) is not False} - jobs
    assert started == set(RUN)
    for name in started:
        assert_running_as_declared(deps, name)
    (job,) = jobs
    state = deps.engine.inspect(deps.created[job])["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    logs = deps.engine.logs(deps.created[job], tail=400)
    assert "acl-bootstrap: done" in logs
    # no password in what the job printed
    for user in (controlbus.SUPERUSER, *KAFKA_USERS):
        assert uploaded(deps, f"{controlbus.SECRET_DIR}/{user}") not in logs, user


def test_every_files_and_data_directory_is_open_to_the_services_uid(
    deps_images: Builder,
) -> None:
    """What Docker seeds a volume with is the image's directory, mode and owner included
    (see test_partial_stack.py): each declared files or data directory must be usable by
    the uid the service runs as."""
    refs = stack_images(STACK)
    for svc in (s for s in stack_catalog(STACK) if s.name in RUN):
        dirs = [*files_dirs(svc), *(v.mount_path for v in svc.volumes)]
        checks = [f"{{ test ! -e {d} || {{ test -r {d} && test -x {d}; }}; }}" for d in dirs]
        checks += [f"test -w {v.mount_path}" for v in svc.volumes]
        proc = subprocess.run(
            [docker_cli(), "run", "--rm", "--network", "none", "--entrypoint", "sh",
             "--user", f"{svc.run_as_user}:{svc.run_as_user}", refs[svc.name], "-c",
             f"{' && '.join(checks)} || {{ ls -ld {' '.join(dirs)}; exit 1; }}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, (svc.name, proc.stdout + proc.stderr)


# --- Postgres: one database per role, closed to the others --------------------------------


def _pg(stack: DockerStack, user: str, password: str, database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1",
        port=host_port(stack, postgres.NAME, postgres.PORT),
        user=user,
        password=password,
        dbname=database,
        connect_timeout=10,
    )


def test_each_postgres_role_reaches_its_own_database_only(deps: DockerStack) -> None:
    assert len(POSTGRES_DATABASES) >= 2
    passwords = {db: uploaded(deps, f"{postgres.SECRET_DIR}/{db}") for db in POSTGRES_DATABASES}
    for db, password in passwords.items():
        with _pg(deps, db, password, db) as conn:
            conn.execute("CREATE TABLE engine_probe (id int)")
            conn.execute("INSERT INTO engine_probe VALUES (1)")
            assert conn.execute("SELECT current_user, count(*) FROM engine_probe").fetchone() == (
                db,
                1,
            )
        for other in set(POSTGRES_DATABASES) - {db}:
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                _pg(deps, db, password, other).close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _pg(deps, db, password + "x", db).close()
    # the superuser's password is the declared one, and the default role has no other
    superuser = uploaded(deps, f"{postgres.SECRET_DIR}/superuser")
    with _pg(deps, "postgres", superuser, "postgres") as conn:
        roles = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolcanlogin")}
        assert roles == {"postgres", *POSTGRES_DATABASES}


# --- the ControlBus: each service's SCRAM user on its topic and group prefixes ------------


def _kafka(stack: DockerStack, user: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": f"127.0.0.1:{host_port(stack, controlbus.NAME, controlbus.HOST)}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": password,
        **extra,
    }


def _create_topic(conf: dict[str, Any], topic: str) -> Any:
    """The error CreateTopics answers with (None: created)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(conf)
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1)],
        request_timeout=CLIENT_TIMEOUT_S,
    )[topic]
    try:
        future.result(timeout=CLIENT_TIMEOUT_S)
    except KafkaException as exc:
        return exc.args[0]
    return None


def _produce(conf: dict[str, Any], topic: str, value: bytes) -> Any:
    """The delivery report's error for one message (None: delivered)."""
    from confluent_kafka import Producer

    reports: list[Any] = []
    producer = Producer({**conf, "message.timeout.ms": int(CLIENT_TIMEOUT_S * 1000)})
    producer.produce(topic, value, on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(CLIENT_TIMEOUT_S + 5) == 0, "the delivery report never came"
    return reports[0]


def _consume(conf: dict[str, Any], topic: str, group: str) -> tuple[bytes | None, Any]:
    """(the first message's value, None) or (None, the error the consumer got)."""
    from confluent_kafka import Consumer

    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error() is not None:
                return None, msg.error()
            return msg.value(), None
        return None, "no message within the deadline"
    finally:
        consumer.close()


def test_each_kafka_user_is_held_to_its_topic_and_group_prefixes(deps: DockerStack) -> None:
    from confluent_kafka import KafkaError

    prefix = stack_catalog(STACK).config.topic_prefix
    superuser = controlbus.SUPERUSER
    admin = _kafka(deps, superuser, uploaded(deps, f"{controlbus.SECRET_DIR}/{superuser}"))
    outside = f"engine-outside-{deps.run_id}"
    assert _create_topic(admin, outside) is None  # the superuser may; no service user may
    for user in KAFKA_USERS:
        conf = _kafka(deps, user, uploaded(deps, f"{controlbus.SECRET_DIR}/{user}"))
        own = f"{prefix}engine-{user}-{deps.run_id}"
        assert _create_topic(conf, own) is None, user
        refused = _create_topic(conf, f"engine-{user}-{deps.run_id}")
        assert refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (user, refused)
        value = f"hello from {user}".encode()
        assert _produce(conf, own, value) is None, user
        assert _consume(conf, own, f"{user}.engine") == (value, None), user
        # outside the prefix: neither write nor read
        err = _produce(conf, outside, b"x")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (user, err)
        other_group = next(u for u in KAFKA_USERS if u != user)
        got, err = _consume(conf, own, f"{other_group}.engine")
        assert got is None and err is not None, (user, got)
        assert err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, (user, err)
        # a wrong password is refused
        assert _authentication_refused(_kafka(deps, user, "wrong-password")), user


def _authentication_refused(conf: dict[str, Any]) -> bool:
    """The broker refuses the client's SASL handshake (seen through its error callback;
    its log lines silenced, the client retries until it is dropped)."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    admin = AdminClient({**conf, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            admin.poll(0.5)
            if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
                return True
        return False
    finally:
        del admin


# --- Neo4j: the generated password, and nothing without it -----------------------------------


def test_neo4j_answers_with_the_generated_password_only(deps: DockerStack) -> None:
    auth = uploaded(deps, f"{neo4j.SECRETS_DIR}/neo4j_auth")
    user, _, password = auth.partition("/")
    assert user == "neo4j" and password
    base = f"http://127.0.0.1:{host_port(deps, neo4j.NAME, neo4j.HTTP)}"
    query = {"statements": [{"statement": "CREATE (n:EngineProbe {run: $run}) RETURN n.run",
                             "parameters": {"run": deps.run_id}}]}  # fmt: skip
    with httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT_S) as client:
        assert client.get("/").json()["neo4j_edition"] == "community"  # the probe's route
        ok = client.post("/db/neo4j/tx/commit", json=query, auth=(user, password))
        assert ok.status_code == 200 and ok.json()["errors"] == [], ok.text
        assert ok.json()["results"][0]["data"][0]["row"] == [deps.run_id]
        for wrong in (None, (user, password + "x")):
            refused = client.post("/db/neo4j/tx/commit", json=query, auth=wrong)
            assert refused.status_code == 401, (wrong is None, refused.text)
    # Bolt, what the DAG manager dials, is the port the health check probes
    with socket.create_connection(("127.0.0.1", host_port(deps, neo4j.NAME, neo4j.BOLT)), 5):
        pass
