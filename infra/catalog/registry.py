"""The registry of services and the catalog a stack builds from it.

Adding a service is one module of this package (its `ENTRY`) and one line in `ENTRIES`;
the tables every stack shares (default images, grants, probe routes, the SDK's
credentials) are derived from the entries here.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from infra.catalog import (
    controlbus,
    coordinator,
    dagmanager,
    gateway,
    minio,
    neo4j,
    postgres,
    qmtl,
    questdb,
    redis,
    worldservice,
)
from infra.catalog.model import (
    BuildContext,
    Catalog,
    CatalogError,
    Credentials,
    Endpoints,
    Entry,
    ServiceSpec,
)

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

# In the order a stack lists (and a platform declares) its services.
ENTRIES: tuple[Entry, ...] = (
    gateway.ENTRY,
    dagmanager.ENTRY,
    worldservice.ENTRY,
    coordinator.ENTRY,
    controlbus.ENTRY,
    redis.ENTRY,
    postgres.ENTRY,
    neo4j.ENTRY,
    questdb.ENTRY,
    minio.ENTRY,
)

ALL_SERVICES = tuple(e.name for e in ENTRIES)
DEFAULT_IMAGES: dict[str, str] = {k: v for e in ENTRIES for k, v in e.images.items()}
QMTL_SERVICES = tuple(e.name for e in ENTRIES if e.qmtl is not None)
REDIS_GRANTS = tuple(e.redis for e in ENTRIES if e.redis is not None)
# The artifact identities first, then each service's own prefix: the order deployed stacks
# have in their bootstrap Job (reordering its mounts would replace the Job).
OBJECT_STORE_GRANTS = tuple(
    sorted(
        (g for e in ENTRIES for g in e.object_store),
        key=lambda g: g.prefix != coordinator.ARTIFACTS_PREFIX,
    )
)
KAFKA_USERS = tuple(e.name for e in ENTRIES if e.kafka_user)
POSTGRES_DATABASES = tuple(e.postgres_database for e in ENTRIES if e.postgres_database)
SDK_CREDENTIALS = tuple(k for e in ENTRIES for k in e.sdk_credentials)
# Every HTTP route a probe may use, per service and port: the routes each server serves.
REAL_HTTP_ROUTES = frozenset((e.name, port, path) for e in ENTRIES for port, path in e.http_routes)


def entry(name: str) -> Entry:
    for e in ENTRIES:
        if e.name == name:
            return e
    raise KeyError(f"no service {name!r} in the registry")


def endpoints(config: StackConfig) -> Endpoints:
    redis_host, redis_port = redis.endpoint(config)
    return Endpoints(
        redis_host=redis_host,
        redis_port=redis_port,
        questdb_dsn=questdb.dsn(config),
        kafka_brokers=controlbus.brokers(config),
        artifact_endpoint=minio.artifact_endpoint(config),
        bucket=config.object_store.bucket,
    )


def build_context(config: StackConfig, ep: Endpoints, *, in_memory: bool) -> BuildContext:
    return BuildContext(
        config=config,
        endpoints=ep,
        in_memory=in_memory,
        redis_grants=REDIS_GRANTS,
        object_store_grants=OBJECT_STORE_GRANTS,
        kafka_users=KAFKA_USERS,
        postgres_databases=POSTGRES_DATABASES,
    )


def qmtl_config_document(
    config: StackConfig, ep: Endpoints, service: str, creds: Credentials, *, in_memory: bool
) -> dict[str, object]:
    """The `/etc/qmtl/config.yml` a QMTL service reads (via QMTL_CONFIG), every DSN filled."""
    section = entry(service).qmtl
    if section is None:
        raise KeyError(f"{service!r} is not one of QMTL's services ({', '.join(QMTL_SERVICES)})")
    ctx = build_context(config, ep, in_memory=in_memory)
    return qmtl.document(ctx, service, section(ctx), creds)


def build_catalog(config: StackConfig) -> Catalog:
    ep = endpoints(config)
    # dev: QMTL's services in their in-memory modes
    ctx = build_context(config, ep, in_memory=config.profile != "prod")
    built = [(e, e.build(ctx)) for e in ENTRIES]
    services = [svc for _, svc in built if svc is not None]

    section = dict(config.seamless)
    section.setdefault("artifact_endpoint", ep.artifact_endpoint)
    section.setdefault("artifact_bucket", ep.bucket)
    # Schema governance (docs/schema-governance.md): canary until a subject is promoted;
    # `schema_registry_url` is passed on when the stack names a registry.
    section.setdefault("validation_mode", "canary")
    for e, svc in built:
        if svc is not None:
            for key, value in e.sdk_settings.items():
                section.setdefault(key, value)
    catalog = Catalog(
        config=config,
        services=tuple(_with_external_ports(config, ep, s) for s in services),
        endpoints=ep,
        sdk_section=section,
    )
    _check(catalog)
    return catalog


def _with_external_ports(config: StackConfig, ep: Endpoints, svc: ServiceSpec) -> ServiceSpec:
    """Ports on managed dependencies this service dials (its egress beyond the stack)."""
    ports = set(svc.external_ports)
    if svc.grants.redis is not None and not redis.bundled(config):
        ports.add(ep.redis_port)
    if svc.grants.kafka is not None and config.kafka is not None:
        ports.update(int(b.rpartition(":")[2] or controlbus.KAFKA) for b in ep.kafka_brokers)
    return dataclasses.replace(svc, external_ports=tuple(sorted(ports)))


def _check(catalog: Catalog) -> None:
    """Every edge ends at a service in this stack; no host port is published twice."""
    for svc in catalog:
        for dep in svc.connects_to:
            if dep not in catalog:
                raise CatalogError(f"{svc.name} connects to {dep!r}, which this stack lacks")
    seen: dict[int, str] = {}
    for svc in catalog:
        for p in svc.ports:
            if p.host_port is None:
                continue
            if p.host_port in seen:
                raise CatalogError(
                    f"host port {p.host_port} published by both {seen[p.host_port]} and {svc.name}"
                )
            seen[p.host_port] = f"{svc.name}/{p.name}"
