"""QuestDB: the coordinator's ledger (PostgreSQL wire), unless the stack names a managed one
(`questdb.external`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.catalog.model import (
    BuildContext,
    Entry,
    Port,
    Probe,
    SecretItem,
    ServiceSpec,
    Volume,
    http_check_curl,
    resources,
)

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

NAME = "questdb"
PG, HTTP, ILP, HEALTH = 8812, 9000, 9009, 9003
CREDENTIAL = "questdb"


def bundled(config: StackConfig) -> bool:
    return config.questdb is None


def edges(config: StackConfig) -> tuple[str, ...]:
    return (NAME,) if bundled(config) else ()


def dsn(config: StackConfig) -> str:
    """Where the ledger lives, without credentials."""
    return config.questdb.dsn if config.questdb is not None else f"postgresql://{NAME}:{PG}/qmtl"


def user(config: StackConfig) -> str:
    return config.questdb.username if config.questdb is not None else "admin"


def build(ctx: BuildContext) -> ServiceSpec | None:
    config = ctx.config
    if not bundled(config):
        return None
    return ServiceSpec(
        name=NAME,
        image=config.images[NAME],
        ports=(
            Port("pg", PG, ctx.host_port(PG)),
            Port("http", HTTP, ctx.host_port(HTTP)),
            Port("ilp", ILP, ctx.host_port(ILP)),
            Port("health", HEALTH, ctx.host_port(HEALTH)),
        ),
        resources=resources("500m", "2", 1024, 2048),
        readiness=Probe(HEALTH, "/status", initial_delay_s=10),
        liveness=Probe(HEALTH, "/status", initial_delay_s=30),
        docker_health=http_check_curl(HEALTH, "/status"),
        secrets=(
            SecretItem(
                key="server.conf",
                render=lambda c: (
                    "pg.user=admin\n"
                    f"pg.password={c[CREDENTIAL]}\n"
                    "metrics.enabled=true\n"
                    f"http.min.net.bind.to=0.0.0.0:{HEALTH}\n"
                ),
                needs=(CREDENTIAL,),
                file="/var/lib/questdb/conf/server.conf",
            ),
        ),
        volumes=(Volume("data", "/var/lib/questdb", 20 if ctx.prod else 5),),
        stateful=True,
        run_as_user=10001,
        # QuestDB extracts its native library to java.io.tmpdir (/tmp) and maps it
        # executable: found on dockerd, where it died with "failed to map segment".
        scratch_exec=True,
        metrics_port=HEALTH,
        scheme="postgresql",
    )


ENTRY = Entry(
    name=NAME,
    build=build,
    images={NAME: "questdb/questdb:8.1.4"},
    http_routes=((HEALTH, "/status"),),
)
