"""QMTL's WorldService: worlds and their policies (Postgres in prod, SQLite in dev)."""

from __future__ import annotations

from infra import isolation
from infra.catalog import postgres, qmtl
from infra.catalog.model import (
    BuildContext,
    Credentials,
    Entry,
    Grants,
    Port,
    Probe,
    QmtlSection,
    ServiceSpec,
)
from infra.isolation import RedisGrant

NAME = "worldservice"
PORT = 8443
REDIS = RedisGrant(user=NAME, key_prefix=NAME, db=2)
DATABASE = "worldservice"


def qmtl_section(ctx: BuildContext) -> QmtlSection:
    ep, in_memory = ctx.endpoints, ctx.in_memory

    def render(creds: Credentials, brokers: list[str]) -> dict[str, object]:
        return {
            "dsn": (
                "sqlite:////tmp/worldservice.db"
                if in_memory
                else postgres.dsn(DATABASE, creds[f"postgres.{DATABASE}"])
            ),
            "redis": ep.redis_url(REDIS, creds),
            "bind": {"host": "0.0.0.0", "port": PORT},
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
        # WorldService documents no health route; a TCP probe cannot hit a missing one.
        readiness=Probe(PORT),
        liveness=Probe(PORT, initial_delay_s=20),
        docker_health=(
            "CMD",
            "python",
            "-c",
            f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 4)",
        ),
        secrets=(qmtl.config_item(ctx, NAME, qmtl_section(ctx)),),
        connects_to=(
            *qmtl.edges(config),
            *(() if ctx.in_memory else (postgres.NAME,)),
        ),
        grants=Grants(
            redis=REDIS,
            kafka=isolation.kafka_grant(NAME, config.topic_prefix),
            postgres_database=None if ctx.in_memory else DATABASE,
        ),
        replicas=2 if ctx.prod else 1,
        env=qmtl.ENV,
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={NAME: "ghcr.io/qmtl/worldservice:0.1.0"},
    redis=REDIS,
    kafka_user=True,
    postgres_database=DATABASE,
    qmtl=qmtl_section,
)
