"""MinIO: the artifact bucket, one identity per grant under its own prefix, unless the stack
uses S3 (`objectStore.mode: aws`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra import isolation
from infra.catalog.model import (
    SECRETS_DIR,
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

NAME = "minio"
API, CONSOLE = 9000, 9001
BOOTSTRAP_JOB = "minio-bootstrap"
CLIENT_IMAGE = "minio-client"  # the image key of the bootstrap Job
ROOT_USER, ROOT_PASSWORD = "minio.root_user", "minio.root_password"


def bundled(config: StackConfig) -> bool:
    return config.object_store.mode == "minio"


def edges(config: StackConfig) -> tuple[str, ...]:
    return (NAME,) if bundled(config) else ()


def artifact_endpoint(config: StackConfig) -> str:
    if bundled(config):
        return f"http://{NAME}:{API}"
    return f"https://s3.{config.object_store.region}.amazonaws.com"


def build(ctx: BuildContext) -> ServiceSpec | None:
    config = ctx.config
    if not bundled(config):
        return None
    return ServiceSpec(
        name=NAME,
        image=config.images[NAME],
        # QMTL maps MinIO's 9000 and 9001 onto host port 9000 twice, and QuestDB's HTTP
        # port is 9000 as well: MinIO is published on 9010/9011 instead.
        ports=(
            Port("api", API, ctx.host_port(9010)),
            Port("console", CONSOLE, ctx.host_port(9011)),
        ),
        resources=resources("250m", "1", 512, 1024),
        readiness=Probe(API, "/minio/health/ready", initial_delay_s=5),
        liveness=Probe(API, "/minio/health/live", initial_delay_s=15),
        docker_health=http_check_curl(API, "/minio/health/live"),
        command=("minio",),
        args=("server", "/data", "--address", f":{API}", "--console-address", f":{CONSOLE}"),
        env={
            "MINIO_ROOT_USER_FILE": f"{SECRETS_DIR}/minio_root_user",
            "MINIO_ROOT_PASSWORD_FILE": f"{SECRETS_DIR}/minio_root_password",
            "MINIO_PROMETHEUS_AUTH_TYPE": "public",
            "HOME": "/tmp",
        },
        secrets=(
            credential_file("minio_root_user", ROOT_USER, f"{SECRETS_DIR}/minio_root_user"),
            credential_file(
                "minio_root_password", ROOT_PASSWORD, f"{SECRETS_DIR}/minio_root_password"
            ),
        ),
        volumes=(Volume("data", "/data", 20 if ctx.prod else 5),),
        stateful=True,
        run_as_user=10001,  # any uid works with a writable /data (fsGroup)
        metrics_port=API,
        metrics_path="/minio/v2/metrics/cluster",
        jobs=(bootstrap_job(ctx),) if config.object_store.provisioner == "job" else (),
    )


def bootstrap_job(ctx: BuildContext) -> JobSpec:
    """Creates the bucket, one user per identity and its own-prefix policy from inside the
    cluster (so `pulumi up` needs to reach nothing but the Kubernetes API)."""
    bucket = ctx.config.object_store.bucket
    grants = ctx.object_store_grants
    secret_dir = "/run/secrets/objectstore"
    policy_dir = "/opt/seamless/policies"
    keys = {"root_user": ROOT_USER, "root_password": ROOT_PASSWORD}
    keys.update({g.identity: f"objectstore.{g.identity}.secret_key" for g in grants})
    return JobSpec(
        name=BOOTSTRAP_JOB,
        image=ctx.config.images[CLIENT_IMAGE],
        command=("/bin/sh", "/opt/seamless/bootstrap.sh"),
        resources=resources("50m", "200m", 64, 128),
        run_as_user=10001,
        config_files=(
            ConfigFile(
                "bootstrap.sh",
                "/opt/seamless/bootstrap.sh",
                isolation.object_store_bootstrap_script(
                    bucket,
                    grants,
                    endpoint=f"{NAME}:{API}",
                    secret_dir=secret_dir,
                    policy_dir=policy_dir,
                ),
            ),
            *(
                ConfigFile(
                    f"{g.identity}.json",
                    f"{policy_dir}/{g.identity}.json",
                    isolation.object_store_policy_json(bucket, g),
                )
                for g in grants
            ),
        ),
        secrets=tuple(
            credential_file(name, key, f"{secret_dir}/{name}") for name, key in keys.items()
        ),
        env={"HOME": "/tmp", "MC_CONFIG_DIR": "/tmp/mc"},
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={
        NAME: "minio/minio:RELEASE.2024-10-13T13-34-11Z",
        CLIENT_IMAGE: "minio/mc:RELEASE.2024-10-08T09-37-26Z",
    },
    http_routes=((API, "/minio/health/live"), (API, "/minio/health/ready")),
)
