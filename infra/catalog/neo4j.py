"""Neo4j (prod): the DAG manager's graph store."""

from __future__ import annotations

from infra.catalog.model import (
    SECRETS_DIR,
    BuildContext,
    Entry,
    Port,
    Probe,
    SecretItem,
    ServiceSpec,
    Volume,
    resources,
    tcp_check,
)

NAME = "neo4j"
HTTP, BOLT = 7474, 7687
CREDENTIAL = "neo4j"


def build(ctx: BuildContext) -> ServiceSpec | None:
    if not ctx.prod:
        return None
    return ServiceSpec(
        name=NAME,
        image=ctx.config.images[NAME],
        ports=(
            Port("http", HTTP, ctx.host_port(HTTP)),
            Port("bolt", BOLT, ctx.host_port(BOLT)),
        ),
        resources=resources("500m", "2", 1024, 2048),
        readiness=Probe(HTTP, "/", initial_delay_s=20),
        liveness=Probe(HTTP, "/", initial_delay_s=60),
        docker_health=tcp_check(BOLT),
        env={
            "NEO4J_AUTH_FILE": f"{SECRETS_DIR}/neo4j_auth",
            "NEO4J_server_memory_heap_max__size": "1G",
        },
        secrets=(
            SecretItem(
                key="neo4j_auth",
                render=lambda c: f"neo4j/{c[CREDENTIAL]}",
                needs=(CREDENTIAL,),
                file=f"{SECRETS_DIR}/neo4j_auth",
            ),
        ),
        volumes=(Volume("data", "/data", 10), Volume("logs", "/logs", 2)),
        stateful=True,
        run_as_user=7474,
        # The neo4j entrypoint rewrites conf/ at start-up: its root filesystem stays writable.
        read_only_root=False,
        # The JVM extracts native libraries (Netty's transport) to /tmp and loads them from
        # there: on a `noexec` scratch Neo4j exits at start with status 1 and no log line
        # (found on dockerd).
        scratch_exec=True,
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={NAME: "neo4j:5.24.1-community"},
    http_routes=((HTTP, "/"),),
)
