"""QMTL's DAG manager: the strategy graphs (Neo4j in prod, an in-memory repo in dev)."""

from __future__ import annotations

from infra import isolation
from infra.catalog import neo4j, qmtl
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

NAME = "dagmanager"
HTTP, GRPC = 8101, 50051
STATUS = "/status"  # QMTL's compose probes `/healthz`, which the DAG manager does not serve
REDIS = RedisGrant(user=NAME, key_prefix=NAME, db=1)
OBJECT_STORE = ObjectStoreGrant(identity=NAME, prefix="dagmanager/")


def qmtl_section(ctx: BuildContext) -> QmtlSection:
    ep, in_memory, prefix = ctx.endpoints, ctx.in_memory, ctx.config.topic_prefix

    def render(creds: Credentials, brokers: list[str]) -> dict[str, object]:
        return {
            "neo4j_dsn": None if in_memory else f"bolt://{neo4j.NAME}:{neo4j.BOLT}",
            "redis_dsn": ep.redis_url(REDIS, creds),
            "neo4j_user": "neo4j",
            "neo4j_password": "" if in_memory else creds[neo4j.CREDENTIAL],
            "memory_repo_path": "/tmp/memrepo.gpickle",
            "kafka_dsn": ",".join(brokers),
            "grpc_port": GRPC,
            "http_port": HTTP,
            "controlbus_dsn": ",".join(brokers),
            "controlbus_queue_topic": f"{prefix}queue",
        }

    needs = () if in_memory else (neo4j.CREDENTIAL,)
    return QmtlSection(needs=needs, render=render)


def build(ctx: BuildContext) -> ServiceSpec | None:
    config = ctx.config
    if not config.qmtl:
        return None
    return ServiceSpec(
        name=NAME,
        image=config.images[NAME],
        ports=(
            Port("http", HTTP, ctx.host_port(HTTP)),
            Port("grpc", GRPC, ctx.host_port(GRPC)),
        ),
        resources=qmtl.RESOURCES,
        readiness=Probe(HTTP, STATUS),
        liveness=Probe(HTTP, STATUS, initial_delay_s=20),
        docker_health=http_check_python(HTTP, STATUS),
        secrets=(qmtl.config_item(ctx, NAME, qmtl_section(ctx)),),
        connects_to=(
            *qmtl.edges(config),
            *(() if ctx.in_memory else (neo4j.NAME,)),
        ),
        grants=Grants(
            redis=REDIS,
            object_store=OBJECT_STORE,
            kafka=isolation.kafka_grant(NAME, config.topic_prefix),
        ),
        metrics_port=HTTP,
        env=qmtl.ENV,
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={NAME: "ghcr.io/qmtl/dagmanager:0.1.0"},
    redis=REDIS,
    object_store=(OBJECT_STORE,),
    kafka_user=True,
    http_routes=((HTTP, STATUS),),
    qmtl=qmtl_section,
)
