"""The ControlBus: an Apache Kafka cluster in KRaft mode (every node broker and controller)
QMTL's services share, one SASL/SCRAM user per service with ACLs on the stack's topic
prefix; none when the stack names a managed Kafka (`controlbus.external`) or runs no QMTL
service (`qmtl: false`).

Apache Kafka, not Redpanda: the bundle's broker must be one these machines can build and
prove (no container registry; Maven Central serves Kafka, nothing serves Redpanda), and
Kafka is the protocol's reference implementation, so QMTL's clients see no difference.
One implementation keeps the catalog to one set of commands and grants.

Listeners: `INTERNAL` (9092, SCRAM-SHA-256) for the services and the brokers' own
replication, `CONTROLLER` (9093, SASL/PLAIN, only the nodes themselves) for the KRaft
quorum, and on a stack that publishes host ports `HOST` (9094, SCRAM-SHA-256) advertised at
127.0.0.1, so host-side clients get addresses they can reach. The admin user
(`controlbus-admin`) is the only superuser; the StandardAuthorizer denies what no ACL allows.
No password is in a rendered file or on a command line: Kafka reads them from the secret
files through its DirectoryConfigProvider (`${dir:...}`), the node's start script hands
the admin's SCRAM credential to the storage formatter in a Java argument file on its
scratch tmpfs, and the ACL job writes each user's SCRAM config to a 0600 file there.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from infra import isolation
from infra.catalog.model import (
    BuildContext,
    ConfigFile,
    Entry,
    JobSpec,
    Port,
    Probe,
    ServiceSpec,
    Volume,
    credential_file,
    resources,
    tcp_check,
)

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

NAME = "controlbus"
KAFKA, CONTROLLER, HOST = 9092, 9093, 9094
ACL_JOB = "controlbus-acl-bootstrap"
SUPERUSER = "controlbus-admin"
SECRET_DIR = "/run/secrets/controlbus"
CONF_DIR = "/etc/kafka"
DATA_DIR = "/var/lib/kafka/data"
JOB_DIR = "/opt/seamless"
UID = 1000  # the upstream apache/kafka image's user, and images/kafka's


def bundled(config: StackConfig) -> bool:
    # Only QMTL's services use it: a stack without them runs none.
    return config.kafka is None and config.qmtl


def edges(config: StackConfig) -> tuple[str, ...]:
    return (NAME,) if bundled(config) else ()


def brokers(config: StackConfig) -> tuple[str, ...]:
    return config.kafka.brokers if config.kafka is not None else (f"{NAME}:{KAFKA}",)


def cluster_id(config: StackConfig) -> str:
    """The KRaft cluster id every node formats its storage with: 16 bytes as URL-safe
    base64, stable per stack and namespace (not a secret)."""
    digest = hashlib.sha256(f"{config.stack}/{config.namespace}/{NAME}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _secret(user: str) -> str:
    """A password as Kafka's DirectoryConfigProvider reads it from the mounted secret file."""
    return f"${{dir:{SECRET_DIR}:{user}}}"


def server_properties(config: StackConfig, *, host_listener: bool) -> str:
    """The node's configuration, the same on every node; its id and advertised addresses
    are added at start (`start_script`)."""
    nodes = config.controlbus_nodes
    replication = min(nodes, 3)
    k8s = config.platform == "kubernetes"
    headless = f"{NAME}-headless.{config.namespace}.svc.cluster.local"
    voters = ",".join(
        f"{i}@{NAME}-{i}.{headless}:{CONTROLLER}" if k8s else f"{i}@{NAME}:{CONTROLLER}"
        for i in range(nodes)
    )
    listeners = [f"INTERNAL://0.0.0.0:{KAFKA}", f"CONTROLLER://0.0.0.0:{CONTROLLER}"]
    protocols = ["INTERNAL:SASL_PLAINTEXT", "CONTROLLER:SASL_PLAINTEXT"]
    if host_listener:
        listeners.append(f"HOST://0.0.0.0:{HOST}")
        protocols.append("HOST:SASL_PLAINTEXT")
    admin = f'username="{SUPERUSER}" password="{_secret(SUPERUSER)}"'
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    lines = [
        "process.roles=broker,controller",
        f"controller.quorum.voters={voters}",
        f"listeners={','.join(listeners)}",
        f"listener.security.protocol.map={','.join(protocols)}",
        "inter.broker.listener.name=INTERNAL",
        "controller.listener.names=CONTROLLER",
        "sasl.enabled.mechanisms=SCRAM-SHA-256",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.controller.protocol=PLAIN",
        f"listener.name.internal.scram-sha-256.sasl.jaas.config={scram} {admin};",
        *([f"listener.name.host.scram-sha-256.sasl.jaas.config={scram};"] if host_listener else []),
        # SCRAM credentials live in the cluster's metadata, which the quorum itself carries:
        # the controllers authenticate each other with PLAIN, the admin's password checked
        # against the same secret file.
        f"listener.name.controller.plain.sasl.jaas.config={plain} {admin} "
        f'user_{SUPERUSER}="{_secret(SUPERUSER)}";',
        "config.providers=dir",
        "config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{SUPERUSER}",
        "allow.everyone.if.no.acl.found=false",
        "auto.create.topics.enable=false",
        f"log.dirs={DATA_DIR}",
        "num.partitions=1",
        f"default.replication.factor={replication}",
        f"offsets.topic.replication.factor={replication}",
        f"transaction.state.log.replication.factor={replication}",
        f"transaction.state.log.min.isr={min(replication, 2)}",
        f"min.insync.replicas={min(replication, 2)}",
        "group.initial.rebalance.delay.ms=0",
    ]
    return "\n".join(lines) + "\n"


def start_script(config: StackConfig, *, host_port: int | None) -> str:
    """Starts one node: its id from its name (`controlbus-2` → 2; one node → 0), its
    advertised addresses, the storage formatted once (with the admin's SCRAM credential),
    then the broker."""
    k8s = config.platform == "kubernetes"
    headless = f"{NAME}-headless.{config.namespace}.svc.cluster.local"
    self_host = f"$name.{headless}" if k8s else NAME
    advertised = f"INTERNAL://{self_host}:{KAFKA}"
    if host_port is not None:
        advertised += f",HOST://127.0.0.1:{host_port}"
    return f"""#!/bin/sh
set -eu
umask 077
name="${{POD_NAME:-${{HOSTNAME:-{NAME}}}}}"
case "$name" in
  {NAME}-[0-9]|{NAME}-[0-9][0-9]) id="${{name##*-}}" ;;
  *) id=0 ;;
esac
conf=/tmp/server.properties
cat {CONF_DIR}/server.properties > "$conf"
printf 'node.id=%s\\nadvertised.listeners=%s\\n' "$id" "{advertised}" >> "$conf"
if [ ! -f {DATA_DIR}/meta.properties ]; then
  # The admin's SCRAM credential goes into the new cluster's metadata; its password
  # reaches the formatter in a Java argument file, never on a command line.
  # (kafka-storage reads @FILE itself; printf is the shell's own)
  printf '%s\\n' format --config "$conf" --cluster-id "{cluster_id(config)}" --add-scram \\
    "SCRAM-SHA-256=[name={SUPERUSER},password=$(cat {SECRET_DIR}/{SUPERUSER})]" > /tmp/format.args
  kafka-storage.sh @/tmp/format.args
  rm -f /tmp/format.args
fi
exec kafka-server-start.sh "$conf"
"""


def admin_properties() -> str:
    """The admin tools' client config: the superuser over SCRAM, its password read from the
    secret file by Kafka's DirectoryConfigProvider."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    return (
        "\n".join(
            [
                "security.protocol=SASL_PLAINTEXT",
                "sasl.mechanism=SCRAM-SHA-256",
                "config.providers=dir",
                "config.providers.dir.class="
                "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
                f'sasl.jaas.config={scram} username="{SUPERUSER}" password="{_secret(SUPERUSER)}";',
            ]
        )
        + "\n"
    )


def build(ctx: BuildContext) -> ServiceSpec | None:
    config = ctx.config
    if not bundled(config):
        return None
    host_port = ctx.host_port(HOST)
    grants = isolation.kafka_grants(ctx.kafka_users, config.topic_prefix)
    user_secrets = tuple(
        credential_file(user, f"controlbus.{user}", f"{SECRET_DIR}/{user}")
        for user in (SUPERUSER, *ctx.kafka_users)
    )
    admin_config = f"{JOB_DIR}/admin.properties"
    return ServiceSpec(
        name=NAME,
        image=config.images[NAME],
        ports=(
            Port("kafka", KAFKA),
            Port("controller", CONTROLLER),
            *((Port("kafka-host", HOST, host_port),) if host_port is not None else ()),
        ),
        resources=resources("500m", "1", 1024, 2048),
        readiness=Probe(KAFKA, initial_delay_s=10),
        liveness=Probe(KAFKA, initial_delay_s=30),
        docker_health=tcp_check(KAFKA),
        command=("/bin/sh", f"{CONF_DIR}/start.sh"),
        env={"KAFKA_HEAP_OPTS": "-Xms512m -Xmx1g"},
        config_files=(
            ConfigFile(
                "server.properties",
                f"{CONF_DIR}/server.properties",
                server_properties(config, host_listener=host_port is not None),
            ),
            ConfigFile(
                "start.sh", f"{CONF_DIR}/start.sh", start_script(config, host_port=host_port)
            ),
        ),
        secrets=user_secrets,
        pod_name_env="POD_NAME",
        jobs=(
            JobSpec(
                name=ACL_JOB,
                image=config.images[NAME],
                command=("/bin/sh", f"{JOB_DIR}/acl-bootstrap.sh"),
                resources=resources("100m", "1", 128, 384),
                run_as_user=UID,
                config_files=(
                    ConfigFile(
                        "acl-bootstrap.sh",
                        f"{JOB_DIR}/acl-bootstrap.sh",
                        isolation.kafka_acl_script(
                            grants,
                            brokers=f"{NAME}:{KAFKA}",
                            admin_config=admin_config,
                            secret_dir=SECRET_DIR,
                        ),
                    ),
                    ConfigFile("admin.properties", admin_config, admin_properties()),
                ),
                secrets=user_secrets,
                env={"HOME": "/tmp", "KAFKA_HEAP_OPTS": "-Xms32m -Xmx160m"},
            ),
        ),
        volumes=(Volume("data", DATA_DIR, 20 if ctx.prod else 5),),
        replicas=config.controlbus_nodes,
        stateful=True,
        run_as_user=UID,
        scratch_paths=("/tmp",),
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={NAME: "apache/kafka:4.1.1"},
)
