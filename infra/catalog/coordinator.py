"""The Seamless coordinator: leases on Redis, the ledger on QuestDB, artifacts in the object
store; built from `sdk/Dockerfile` unless the stack gives its image by digest."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

from infra.catalog import minio, questdb, redis
from infra.catalog.model import (
    SECRETS_DIR,
    BuildContext,
    Credentials,
    Entry,
    Grants,
    Port,
    Probe,
    SecretItem,
    ServiceSpec,
    http_check_python,
    resources,
)
from infra.isolation import ObjectStoreGrant, RedisGrant

NAME = "seamless-coordinator"
HTTP, METRICS = 8080, 9102
URL = f"http://{NAME}:{HTTP}"
HEALTH = "/healthz"
REDIS = RedisGrant(user=NAME, key_prefix="seamless", db=3)
# The SDK publishes artifacts where the coordinator reads them.
ARTIFACTS_PREFIX = "artifacts/"
OBJECT_STORE = ObjectStoreGrant(identity=NAME, prefix=ARTIFACTS_PREFIX)
SDK_OBJECT_STORE = ObjectStoreGrant(identity="seamless-sdk", prefix=ARTIFACTS_PREFIX)
# QuestDB OSS has one PG user: the table prefix is a convention the SDK enforces, not an ACL.
LEDGER_TABLE_PREFIX = "seamless_"

# The coordinator's clients (its COORDINATOR_TOKENS_FILE): the SDK's workers, and `ops`, an
# operator only (it may force a recovery, e.g. `seamless lease recover --force`, and claims
# nothing), so the workers' token can never take a live lease from another worker.
WORKER_CLIENT = "seamless-sdk"
OPERATOR_CLIENT = "ops"
WORKER_TOKEN, OPERATOR_TOKEN = "coordinator.token", "coordinator.operator_token"


def tokens(credentials: Credentials) -> dict[str, Any]:
    """The coordinator's tokens file, in its role form (see seamless.coordinator.settings)."""
    return {
        WORKER_CLIENT: credentials[WORKER_TOKEN],
        OPERATOR_CLIENT: {"token": credentials[OPERATOR_TOKEN], "roles": ["operator"]},
    }


def _with_credentials(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def build(ctx: BuildContext) -> ServiceSpec | None:
    config, ep = ctx.config, ctx.endpoints
    if not config.coordinator_enabled:
        return None
    qdb_user = questdb.user(config)
    # The coordinator alone reads the ledger and the artifacts: managed ones are egress.
    external: list[int] = []
    if config.questdb is not None:
        external.append(urlsplit(config.questdb.dsn).port or questdb.PG)
    if config.object_store.mode == "aws":
        external.append(443)
    access_key = f"objectstore.{NAME}.access_key"
    secret_key = f"objectstore.{NAME}.secret_key"
    return ServiceSpec(
        name=NAME,
        image=config.coordinator_image,
        build_context="sdk" if config.build_coordinator_image else None,
        external_ports=tuple(external),
        ports=(
            Port("http", HTTP, ctx.host_port(8090)),  # host 8090: gateway owns 8080
            Port("metrics", METRICS, ctx.host_port(METRICS)),
        ),
        resources=resources("250m", "1", 256, 512),
        readiness=Probe(HTTP, HEALTH, initial_delay_s=5),
        liveness=Probe(HTTP, HEALTH, initial_delay_s=15),
        docker_health=http_check_python(HTTP, HEALTH),
        env={
            "COORDINATOR_ID": NAME,
            "BIND_ADDR": f"0.0.0.0:{HTTP}",
            "PROMETHEUS_PORT": str(METRICS),
            "ARTIFACT_ENDPOINT": ep.artifact_endpoint,
            "ARTIFACT_BUCKET": ep.bucket,
            "COORDINATOR_CONFIG": f"{SECRETS_DIR}/coordinator.yml",
            "COORDINATOR_TOKENS_FILE": f"{SECRETS_DIR}/tokens.yml",
            "COORDINATOR_KEY_PREFIX": f"{REDIS.key_prefix}:",
            "COORDINATOR_LEDGER_PREFIX": LEDGER_TABLE_PREFIX,
        },
        # Every secret reaches the coordinator as a file (its settings file and its tokens
        # file), never as an env var: the same delivery works on Docker and Kubernetes.
        secrets=(
            SecretItem(
                key="coordinator.yml",
                render=lambda c: yaml.safe_dump(
                    {
                        "REDIS_DSN": ep.redis_url(REDIS, c),
                        "QUESTDB_DSN": _with_credentials(
                            ep.questdb_dsn, qdb_user, c[questdb.CREDENTIAL]
                        ),
                        "ARTIFACT_ACCESS_KEY": c[access_key],
                        "ARTIFACT_SECRET_KEY": c[secret_key],
                    },
                    sort_keys=True,
                ),
                needs=(f"redis.{NAME}", questdb.CREDENTIAL, access_key, secret_key),
                file=f"{SECRETS_DIR}/coordinator.yml",
            ),
            SecretItem(
                key="tokens.yml",
                render=lambda c: yaml.safe_dump(tokens(c), sort_keys=True),
                needs=(WORKER_TOKEN, OPERATOR_TOKEN),
                file=f"{SECRETS_DIR}/tokens.yml",
            ),
        ),
        connects_to=(*redis.edges(config), *questdb.edges(config), *minio.edges(config)),
        grants=Grants(
            redis=REDIS,
            object_store=OBJECT_STORE,
            questdb_table_prefix=LEDGER_TABLE_PREFIX,
        ),
        replicas=2 if ctx.prod else 1,
        metrics_port=METRICS,
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    redis=REDIS,
    object_store=(OBJECT_STORE, SDK_OBJECT_STORE),
    http_routes=((HTTP, HEALTH),),
    sdk_settings={"coordinator_url": URL},
    sdk_credentials=(WORKER_TOKEN,),
)
