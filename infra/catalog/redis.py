"""Redis: one ACL user per service, limited to its own key prefix (see `infra.isolation`),
unless the stack names a managed Redis (`redis.external`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra import isolation
from infra.catalog.model import (
    BuildContext,
    Credentials,
    Entry,
    Port,
    Probe,
    SecretItem,
    ServiceSpec,
    Volume,
    resources,
)

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

NAME = "redis"
PORT = 6379
ADMIN_CREDENTIAL = "redis.admin"


def bundled(config: StackConfig) -> bool:
    return config.redis is None


def edges(config: StackConfig) -> tuple[str, ...]:
    """The edge to Redis of a service that dials it (none to a managed one)."""
    return (NAME,) if bundled(config) else ()


def endpoint(config: StackConfig) -> tuple[str, int]:
    if config.redis is None:
        return NAME, PORT
    host, _, port = config.redis.url.partition(":")
    return host, int(port or PORT)


def build(ctx: BuildContext) -> ServiceSpec | None:
    if not bundled(ctx.config):
        return None
    grants = ctx.redis_grants

    def acl_file(c: Credentials) -> str:
        passwords = {g.user: c[f"redis.{g.user}"] for g in grants}
        return isolation.redis_acl_file(grants, passwords, c[ADMIN_CREDENTIAL])

    return ServiceSpec(
        name=NAME,
        image=ctx.config.images[NAME],
        ports=(Port("redis", PORT, ctx.host_port(PORT)),),
        resources=resources("100m", "500m", 128, 512),
        readiness=Probe(PORT, initial_delay_s=5),
        liveness=Probe(PORT, initial_delay_s=15),
        docker_health=("CMD", "redis-cli", "ping"),
        command=("redis-server",),
        args=(
            "--aclfile",
            "/etc/redis/users.acl",
            "--appendonly",
            "yes",
            "--dir",
            "/data",
            "--protected-mode",
            "no",
        ),
        secrets=(
            SecretItem(
                key="users.acl",
                render=acl_file,
                needs=(ADMIN_CREDENTIAL, *(f"redis.{g.user}" for g in grants)),
                file="/etc/redis/users.acl",
            ),
        ),
        volumes=(Volume("data", "/data", 5),),
        stateful=True,
        run_as_user=10001,  # any uid works with a writable /data (fsGroup)
        scheme="redis",
    )


ENTRY = Entry(name=NAME, build=build, images={NAME: "redis:7.4.1-alpine"})
