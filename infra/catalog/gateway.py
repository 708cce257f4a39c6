"""QMTL's gateway: the HTTP entry point strategies submit to."""

from __future__ import annotations

from infra import isolation
from infra.catalog import dagmanager, postgres, qmtl, worldservice
from infra.catalog.model import (
    BuildContext,
    Credentials,
    Entry,
    Grants,
    Port,
    Probe,
    QmtlSection,
    ServiceSpec,
    http_check_python,
)
from infra.isolation import ObjectStoreGrant, RedisGrant

NAME = "gateway"
PORT = 8080
STATUS = "/status"  # QMTL's compose probes `/healthz`, which the gateway does not serve
REDIS = RedisGrant(user=NAME, key_prefix=NAME, db=0)
OBJECT_STORE = ObjectStoreGrant(identity=NAME, prefix="gateway/")
DATABASE = "gateway"
TOPICS = ("activation", "policy", "queue", "sentinel_weight")


def qmtl_section(ctx: BuildContext) -> QmtlSection:
    ep, in_memory, prefix = ctx.endpoints, ctx.in_memory, ctx.config.topic_prefix

    def render(creds: Credentials, brokers: list[str]) -> dict[str, object]:
        return {
            "host": "0.0.0.0",
            "port": PORT,
            "redis_dsn": ep.redis_url(REDIS, creds),
            "database_backend": "memory" if in_memory else "postgres",
            "database_dsn": (
                "memory://" if in_memory else postgres.dsn(DATABASE, creds[f"postgres.{DATABASE}"])
            ),
            "controlbus_brokers": brokers,
            "controlbus_topics": [f"{prefix}{t}" for t in TOPICS],
            "controlbus_group": "gateway.controlbus",
            "worldservice_url": f"http://{worldservice.NAME}:{worldservice.PORT}",
        }

    needs = () if in_memory else (f"postgres.{DATABASE}",)
    return QmtlSection(needs=needs, render=render)


def build(ctx: BuildContext) -> ServiceSpec | None:
    config = ctx.config
    if not config.qmtl:
        return None
    return ServiceSpec(
        name=NAME,
        image=config.images[NAME],
        ports=(Port("http", PORT, ctx.host_port(PORT)),),
        resources=qmtl.RESOURCES,
        readiness=Probe(PORT, STATUS),
        liveness=Probe(PORT, STATUS, initial_delay_s=20),
        docker_health=http_check_python(PORT, STATUS),
        secrets=(qmtl.config_item(ctx, NAME, qmtl_section(ctx)),),
        connects_to=(
            *qmtl.edges(config),
            worldservice.NAME,
            dagmanager.NAME,
            *(() if ctx.in_memory else (postgres.NAME,)),
        ),
        grants=Grants(
            redis=REDIS,
            object_store=OBJECT_STORE,
            kafka=isolation.kafka_grant(NAME, config.topic_prefix),
            postgres_database=None if ctx.in_memory else DATABASE,
        ),
        replicas=2 if ctx.prod else 1,
        metrics_port=PORT,
        env=qmtl.ENV,
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={NAME: "ghcr.io/qmtl/gateway:0.1.0"},
    redis=REDIS,
    object_store=(OBJECT_STORE,),
    kafka_user=True,
    postgres_database=DATABASE,
    http_routes=((PORT, STATUS),),
    qmtl=qmtl_section,
)
