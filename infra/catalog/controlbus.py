"""The ControlBus: a Redpanda cluster (Kafka API) QMTL's services share, one SASL user per
service with ACLs on the stack's topic prefix; none when the stack names a managed Kafka
(`controlbus.external`) or runs no QMTL service (`qmtl: false`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

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
    http_check_curl,
    resources,
)

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

NAME = "controlbus"
KAFKA, ADMIN, RPC = 9092, 9644, 33145
READY = "/v1/status/ready"
ACL_JOB = "controlbus-acl-bootstrap"
SUPERUSER = "controlbus-admin"


def bundled(config: StackConfig) -> bool:
    # Only QMTL's services use it: a stack without them runs none.
    return config.kafka is None and config.qmtl


def edges(config: StackConfig) -> tuple[str, ...]:
    return (NAME,) if bundled(config) else ()


def brokers(config: StackConfig) -> tuple[str, ...]:
    return config.kafka.brokers if config.kafka is not None else (f"{NAME}:{KAFKA}",)


def build(ctx: BuildContext) -> ServiceSpec | None:
    config = ctx.config
    if not bundled(config):
        return None
    nodes = config.controlbus_nodes
    k8s = config.platform == "kubernetes"
    # Each node advertises its own stable name: the pod's DNS name under the headless
    # service on Kubernetes, the container name on Docker.
    headless = f"{NAME}-headless.{config.namespace}.svc.cluster.local"
    self_host = f"$(POD_NAME).{headless}" if k8s else NAME
    seeds = (
        ",".join(f"{NAME}-{i}.{headless}:{RPC}" for i in range(nodes)) if k8s else f"{NAME}:{RPC}"
    )
    bootstrap = yaml.safe_dump(
        {
            "superusers": [SUPERUSER],
            "enable_sasl": True,
            "kafka_enable_authorization": True,
            "auto_create_topics_enabled": False,
            "default_topic_replications": min(nodes, 3),
        },
        sort_keys=True,
    )
    grants = isolation.kafka_grants(ctx.kafka_users, config.topic_prefix)
    user_secrets = tuple(
        credential_file(user, f"controlbus.{user}", f"/run/secrets/controlbus/{user}")
        for user in (SUPERUSER, *ctx.kafka_users)
    )
    return ServiceSpec(
        name=NAME,
        image=config.images[NAME],
        ports=(
            Port("kafka", KAFKA, ctx.host_port(KAFKA)),
            Port("admin", ADMIN, ctx.host_port(ADMIN)),
            Port("rpc", RPC),
        ),
        resources=resources("500m", "1", 1024, 2048),
        readiness=Probe(ADMIN, READY, initial_delay_s=10),
        liveness=Probe(ADMIN, READY, initial_delay_s=30),
        docker_health=http_check_curl(ADMIN, READY),
        command=("/usr/bin/rpk",),
        args=(
            "redpanda",
            "start",
            "--smp",
            "1",
            "--memory",
            "1G",
            "--reserve-memory",
            "0M",
            "--overprovisioned",
            "--default-log-level=warn",
            f"--kafka-addr=internal://0.0.0.0:{KAFKA}",
            f"--advertise-kafka-addr=internal://{self_host}:{KAFKA}",
            f"--rpc-addr=0.0.0.0:{RPC}",
            f"--advertise-rpc-addr={self_host}:{RPC}",
            f"--seeds={seeds}",
        ),
        config_files=(ConfigFile("bootstrap.yaml", "/etc/redpanda/.bootstrap.yaml", bootstrap),),
        secrets=user_secrets,
        pod_name_env="POD_NAME",
        jobs=(
            JobSpec(
                name=ACL_JOB,
                image=config.images[NAME],
                command=("/bin/sh", "/opt/seamless/acl-bootstrap.sh"),
                resources=resources("50m", "200m", 64, 128),
                run_as_user=101,
                config_files=(
                    ConfigFile(
                        "acl-bootstrap.sh",
                        "/opt/seamless/acl-bootstrap.sh",
                        isolation.kafka_acl_script(grants, brokers=f"{NAME}:{KAFKA}"),
                    ),
                ),
                secrets=user_secrets,
                env={"HOME": "/tmp"},
            ),
        ),
        volumes=(Volume("data", "/var/lib/redpanda/data", 20 if ctx.prod else 5),),
        replicas=nodes,
        stateful=True,
        run_as_user=101,
        scratch_paths=("/tmp", "/etc/redpanda"),
        metrics_port=ADMIN,
        metrics_path="/public_metrics",
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={NAME: "docker.redpanda.com/redpandadata/redpanda:v24.2.7"},
    http_routes=((ADMIN, READY),),
)
