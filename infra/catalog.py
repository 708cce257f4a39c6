"""The bundle's services as plain data, knowing nothing of Docker or Kubernetes.

A service is one `ServiceSpec`: image, ports, env, config files, secrets (rendered from the
generated credentials), probes on routes the service really serves, resources, volumes,
the services it connects to, and the grants it holds on shared dependencies. The platforms
(`infra/platforms/`) render this catalog; a new service is one entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlsplit as _split

import yaml

from infra import isolation
from infra.isolation import KafkaGrant, ObjectStoreGrant, RedisGrant
from infra.stack_config import StackConfig

# Credentials are a flat bag of generated values, keyed like "redis.gateway"; a secret item
# renders its document from that bag.
Credentials = Mapping[str, str]
Render = Callable[[Credentials], str]


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    host_port: int | None = None  # published on the Docker host (dev); unique in a catalog


@dataclass(frozen=True)
class Probe:
    port: int
    path: str | None = None  # None: a TCP connect probe (for servers with no HTTP route)
    initial_delay_s: int = 10
    period_s: int = 10
    timeout_s: int = 5
    failure_threshold: int = 6


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request_mi: int
    memory_limit_mi: int


@dataclass(frozen=True)
class Volume:
    name: str
    mount_path: str
    size_gi: int


@dataclass(frozen=True)
class SecretItem:
    """One secret value of a service, delivered as a file and/or an env var."""

    key: str
    render: Render
    needs: tuple[str, ...]  # credential keys `render` reads
    file: str | None = None
    env: str | None = None


@dataclass(frozen=True)
class ConfigFile:
    """A non-secret file (mounted read-only)."""

    key: str
    path: str
    content: str


@dataclass(frozen=True)
class JobSpec:
    """A one-shot task a service needs once it is up (users, ACLs, buckets), run inside the
    cluster next to the service it dials, with its own files and secrets."""

    name: str
    image: str
    command: tuple[str, ...]
    resources: Resources
    run_as_user: int
    config_files: tuple[ConfigFile, ...] = ()
    secrets: tuple[SecretItem, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Grants:
    redis: RedisGrant | None = None
    object_store: ObjectStoreGrant | None = None
    kafka: KafkaGrant | None = None
    postgres_database: str | None = None
    questdb_table_prefix: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    ports: tuple[Port, ...]
    resources: Resources
    readiness: Probe
    liveness: Probe
    docker_health: tuple[str, ...]  # the same check as a command the image can run
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretItem, ...] = ()
    config_files: tuple[ConfigFile, ...] = ()
    volumes: tuple[Volume, ...] = ()
    connects_to: tuple[str, ...] = ()  # dependency edges: the services whose ports it dials
    grants: Grants = Grants()
    replicas: int = 1
    stateful: bool = False
    run_as_user: int = 10001
    read_only_root: bool = True
    scratch_paths: tuple[str, ...] = ("/tmp",)
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    build_context: str | None = None  # built from a Dockerfile instead of pulled
    metrics_port: int | None = None
    metrics_path: str = "/metrics"
    pod_name_env: str | None = None  # an env var carrying the replica's own name
    jobs: tuple[JobSpec, ...] = ()  # one-shot tasks run against this service once it is up
    external_ports: tuple[int, ...] = ()  # ports of managed (out-of-stack) dependencies

    def port(self, name: str) -> int:
        for p in self.ports:
            if p.name == name:
                return p.port
        raise KeyError(f"{self.name} has no port {name!r}")


@dataclass(frozen=True)
class Catalog:
    """The stack's services, with where each dependency lives (`endpoints`) and the SDK's
    `seamless` section filled from them (`sdk_section`), both resolved once here."""

    config: StackConfig
    services: tuple[ServiceSpec, ...]
    endpoints: Endpoints
    sdk_section: Mapping[str, object]

    def __iter__(self) -> Iterator[ServiceSpec]:
        return iter(self.services)

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self.services)

    def get(self, name: str) -> ServiceSpec:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(f"service {name!r} is not in this stack's catalog")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def clients_of(self, name: str) -> tuple[str, ...]:
        """The services that dial `name` (the allowed ingress edges)."""
        return tuple(s.name for s in self.services if name in s.connects_to)


# --- service names and ports (QMTL's real ones; see docs/deploy.md) ------------------------

GATEWAY, DAGMANAGER, WORLDSERVICE = "gateway", "dagmanager", "worldservice"
COORDINATOR, CONTROLBUS = "seamless-coordinator", "controlbus"
REDIS, POSTGRES, NEO4J, QUESTDB, MINIO = "redis", "postgres", "neo4j", "questdb", "minio"
ALL_SERVICES = (
    GATEWAY, DAGMANAGER, WORLDSERVICE, COORDINATOR, CONTROLBUS,
    REDIS, POSTGRES, NEO4J, QUESTDB, MINIO,
)  # fmt: skip

GATEWAY_PORT, DAGMANAGER_HTTP, DAGMANAGER_GRPC, WORLDSERVICE_PORT = 8080, 8101, 50051, 8443
COORDINATOR_HTTP, COORDINATOR_METRICS = 8080, 9102
KAFKA_PORT, REDPANDA_ADMIN, REDPANDA_RPC = 9092, 9644, 33145
REDIS_PORT, POSTGRES_PORT, NEO4J_HTTP, NEO4J_BOLT = 6379, 5432, 7474, 7687
QUESTDB_PG, QUESTDB_HTTP, QUESTDB_ILP, QUESTDB_HEALTH = 8812, 9000, 9009, 9003
MINIO_API, MINIO_CONSOLE = 9000, 9001

# Every HTTP route a probe may use, per service and port: the routes each server serves.
# (QMTL's compose probes `/healthz` on gateway and dagmanager, which serve `/status`.)
REAL_HTTP_ROUTES: frozenset[tuple[str, int, str]] = frozenset(
    {
        (GATEWAY, GATEWAY_PORT, "/status"),
        (DAGMANAGER, DAGMANAGER_HTTP, "/status"),
        (COORDINATOR, COORDINATOR_HTTP, "/healthz"),
        (CONTROLBUS, REDPANDA_ADMIN, "/v1/status/ready"),
        (NEO4J, NEO4J_HTTP, "/"),
        (QUESTDB, QUESTDB_HEALTH, "/status"),
        (MINIO, MINIO_API, "/minio/health/live"),
        (MINIO, MINIO_API, "/minio/health/ready"),
    }
)

CONTROLBUS_ACL_JOB = "controlbus-acl-bootstrap"
MINIO_BOOTSTRAP_JOB = "minio-bootstrap"

QMTL_CONFIG_PATH = "/etc/qmtl/config.yml"
SECRETS_DIR = "/run/secrets/seamless"


def _http_check_python(port: int, path: str) -> tuple[str, ...]:
    # QMTL and coordinator images are python-slim: no curl, but python is always there.
    return (
        "CMD",
        "python",
        "-c",
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)",
    )


def _http_check_curl(port: int, path: str) -> tuple[str, ...]:
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}")


def _tcp_check(port: int) -> tuple[str, ...]:
    return ("CMD-SHELL", f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'")


def _r(cpu_req: str, cpu_lim: str, mem_req: int, mem_lim: int) -> Resources:
    return Resources(cpu_req, cpu_lim, mem_req, mem_lim)


# --- DSNs each service is handed -----------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    """Where each dependency lives for this stack (in-bundle service or managed override)."""

    redis_host: str
    redis_port: int
    questdb_dsn: str  # without credentials
    kafka_brokers: tuple[str, ...]
    artifact_endpoint: str
    bucket: str


def endpoints(config: StackConfig) -> Endpoints:
    if config.redis is not None:
        host, _, port = config.redis.url.partition(":")
        redis_host, redis_port = host, int(port or REDIS_PORT)
    else:
        redis_host, redis_port = REDIS, REDIS_PORT
    questdb_dsn = (
        config.questdb.dsn
        if config.questdb is not None
        else f"postgresql://{QUESTDB}:{QUESTDB_PG}/qmtl"
    )
    brokers = config.kafka.brokers if config.kafka is not None else (f"{CONTROLBUS}:{KAFKA_PORT}",)
    artifact_endpoint = (
        f"https://s3.{config.object_store.region}.amazonaws.com"
        if config.object_store.mode == "aws"
        else f"http://{MINIO}:{MINIO_API}"
    )
    return Endpoints(
        redis_host=redis_host,
        redis_port=redis_port,
        questdb_dsn=questdb_dsn,
        kafka_brokers=brokers,
        artifact_endpoint=artifact_endpoint,
        bucket=config.object_store.bucket,
    )


def _redis_dsn(ep: Endpoints, grant: RedisGrant) -> Render:
    return lambda c: isolation.redis_url(
        grant.user, c[f"redis.{grant.user}"], ep.redis_host, ep.redis_port, grant.db
    )


def _with_credentials(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def _questdb_user(config: StackConfig) -> str:
    return config.questdb.username if config.questdb is not None else "admin"


# --- QMTL's config.yml ---------------------------------------------------------------------


def qmtl_config_document(
    config: StackConfig, ep: Endpoints, service: str, creds: Credentials, *, in_memory: bool
) -> dict[str, object]:
    """The `/etc/qmtl/config.yml` a QMTL service reads (via QMTL_CONFIG), every DSN filled.

    In dev (`in_memory`) gateway/dagmanager/worldservice use their in-memory backends and
    only Redis and the ControlBus; prod wires Postgres and Neo4j too.
    """
    brokers = list(ep.kafka_brokers)
    prefix = config.topic_prefix
    topics = [f"{prefix}{t}" for t in ("activation", "policy", "queue", "sentinel_weight")]

    def redis_for(user: str) -> str:
        grant = isolation.redis_grant(user)
        return isolation.redis_url(
            user, creds[f"redis.{user}"], ep.redis_host, ep.redis_port, grant.db
        )

    doc: dict[str, object] = {
        "profile": config.profile,
        "seamless": {k: v for k, v in config.seamless.items() if k != "profile"},
        "telemetry": {"otel_exporter_endpoint": None},
    }
    if service == GATEWAY:
        doc["gateway"] = {
            "host": "0.0.0.0",
            "port": GATEWAY_PORT,
            "redis_dsn": redis_for(GATEWAY),
            "database_backend": "memory" if in_memory else "postgres",
            "database_dsn": (
                "memory://"
                if in_memory
                else f"postgresql://gateway:{creds['postgres.gateway']}@{POSTGRES}:{POSTGRES_PORT}/gateway"
            ),
            "controlbus_brokers": brokers,
            "controlbus_topics": topics,
            "controlbus_group": "gateway.controlbus",
            "worldservice_url": f"http://{WORLDSERVICE}:{WORLDSERVICE_PORT}",
        }
    elif service == DAGMANAGER:
        doc["dagmanager"] = {
            "neo4j_dsn": None if in_memory else f"bolt://{NEO4J}:{NEO4J_BOLT}",
            "redis_dsn": redis_for(DAGMANAGER),
            "neo4j_user": "neo4j",
            "neo4j_password": "" if in_memory else creds["neo4j"],
            "memory_repo_path": "/tmp/memrepo.gpickle",
            "kafka_dsn": ",".join(brokers),
            "grpc_port": DAGMANAGER_GRPC,
            "http_port": DAGMANAGER_HTTP,
            "controlbus_dsn": ",".join(brokers),
            "controlbus_queue_topic": f"{prefix}queue",
        }
    elif service == WORLDSERVICE:
        doc["worldservice"] = {
            "dsn": (
                "sqlite:////tmp/worldservice.db"
                if in_memory
                else f"postgresql://worldservice:{creds['postgres.worldservice']}@{POSTGRES}:{POSTGRES_PORT}/worldservice"
            ),
            "redis": redis_for(WORLDSERVICE),
            "bind": {"host": "0.0.0.0", "port": WORLDSERVICE_PORT},
        }
    doc["controlbus"] = {
        "brokers": brokers,
        "topic_prefix": prefix,
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": service,
        "sasl_password": creds[f"controlbus.{service}"],
    }
    return doc


def _qmtl_config_item(
    config: StackConfig, ep: Endpoints, service: str, in_memory: bool
) -> SecretItem:
    needs = [f"redis.{service}", f"controlbus.{service}"]
    if not in_memory and service == GATEWAY:
        needs.append("postgres.gateway")
    if not in_memory and service == WORLDSERVICE:
        needs.append("postgres.worldservice")
    if not in_memory and service == DAGMANAGER:
        needs.append("neo4j")

    def render(c: Credentials) -> str:
        doc = qmtl_config_document(config, ep, service, c, in_memory=in_memory)
        return yaml.safe_dump(doc, sort_keys=False)

    return SecretItem(key="config.yml", render=render, needs=tuple(needs), file=QMTL_CONFIG_PATH)


# --- the catalog ---------------------------------------------------------------------------


def build_catalog(config: StackConfig) -> Catalog:
    ep = endpoints(config)
    prod = config.profile == "prod"
    in_memory = not prod  # dev: QMTL services in their in-memory modes
    images = config.images
    host = config.expose_host_ports
    redis_bundled = config.redis is None
    services: list[ServiceSpec] = []

    def hp(port: int) -> int | None:
        return port if host else None

    data_edges = [REDIS] if redis_bundled else []
    bus_edges = [CONTROLBUS] if config.kafka is None else []

    # QMTL services -------------------------------------------------------------------------
    qmtl_env = {"QMTL_CONFIG": QMTL_CONFIG_PATH}
    services.append(
        ServiceSpec(
            name=GATEWAY,
            image=images[GATEWAY],
            ports=(Port("http", GATEWAY_PORT, hp(GATEWAY_PORT)),),
            resources=_r("250m", "1", 256, 1024),
            readiness=Probe(GATEWAY_PORT, "/status"),
            liveness=Probe(GATEWAY_PORT, "/status", initial_delay_s=20),
            docker_health=_http_check_python(GATEWAY_PORT, "/status"),
            secrets=(_qmtl_config_item(config, ep, GATEWAY, in_memory),),
            connects_to=tuple(
                data_edges
                + bus_edges
                + [WORLDSERVICE, DAGMANAGER]
                + ([] if in_memory else [POSTGRES])
            ),
            grants=Grants(
                redis=isolation.redis_grant(GATEWAY),
                object_store=_os_grant(GATEWAY),
                kafka=_kafka_grant(config, GATEWAY),
                postgres_database=None if in_memory else "gateway",
            ),
            replicas=2 if prod else 1,
            metrics_port=GATEWAY_PORT,
            env=qmtl_env,
        )
    )
    services.append(
        ServiceSpec(
            name=DAGMANAGER,
            image=images[DAGMANAGER],
            ports=(
                Port("http", DAGMANAGER_HTTP, hp(DAGMANAGER_HTTP)),
                Port("grpc", DAGMANAGER_GRPC, hp(DAGMANAGER_GRPC)),
            ),
            resources=_r("250m", "1", 256, 1024),
            readiness=Probe(DAGMANAGER_HTTP, "/status"),
            liveness=Probe(DAGMANAGER_HTTP, "/status", initial_delay_s=20),
            docker_health=_http_check_python(DAGMANAGER_HTTP, "/status"),
            secrets=(_qmtl_config_item(config, ep, DAGMANAGER, in_memory),),
            connects_to=tuple(data_edges + bus_edges + ([] if in_memory else [NEO4J])),
            grants=Grants(
                redis=isolation.redis_grant(DAGMANAGER),
                object_store=_os_grant(DAGMANAGER),
                kafka=_kafka_grant(config, DAGMANAGER),
            ),
            metrics_port=DAGMANAGER_HTTP,
            env=qmtl_env,
        )
    )
    services.append(
        ServiceSpec(
            name=WORLDSERVICE,
            image=images[WORLDSERVICE],
            ports=(Port("http", WORLDSERVICE_PORT, hp(WORLDSERVICE_PORT)),),
            resources=_r("250m", "1", 256, 1024),
            # WorldService documents no health route; a TCP probe cannot hit a missing one.
            readiness=Probe(WORLDSERVICE_PORT),
            liveness=Probe(WORLDSERVICE_PORT, initial_delay_s=20),
            docker_health=(
                "CMD",
                "python",
                "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {WORLDSERVICE_PORT}), 4)",
            ),
            secrets=(_qmtl_config_item(config, ep, WORLDSERVICE, in_memory),),
            connects_to=tuple(data_edges + bus_edges + ([] if in_memory else [POSTGRES])),
            grants=Grants(
                redis=isolation.redis_grant(WORLDSERVICE),
                kafka=_kafka_grant(config, WORLDSERVICE),
                postgres_database=None if in_memory else "worldservice",
            ),
            replicas=2 if prod else 1,
            env=qmtl_env,
        )
    )

    # The coordinator ------------------------------------------------------------------------
    if config.coordinator_enabled:
        services.append(_coordinator(config, ep, hp, data_edges))

    # A stack without QMTL's services (`qmtl: false`, e.g. the partial stack) runs no
    # ControlBus either: only gateway, dagmanager and worldservice use it.
    if not config.qmtl:
        services = [s for s in services if s.name not in (GATEWAY, DAGMANAGER, WORLDSERVICE)]

    # ControlBus ----------------------------------------------------------------------------
    if config.kafka is None and config.qmtl:
        services.append(_controlbus(config, hp))

    # Data stores ---------------------------------------------------------------------------
    if redis_bundled:
        services.append(
            ServiceSpec(
                name=REDIS,
                image=images[REDIS],
                ports=(Port("redis", REDIS_PORT, hp(REDIS_PORT)),),
                resources=_r("100m", "500m", 128, 512),
                readiness=Probe(REDIS_PORT, initial_delay_s=5),
                liveness=Probe(REDIS_PORT, initial_delay_s=15),
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
                        render=lambda c: isolation.redis_acl_file(
                            isolation.REDIS_GRANTS,
                            {g.user: c[f"redis.{g.user}"] for g in isolation.REDIS_GRANTS},
                            c["redis.admin"],
                        ),
                        needs=(
                            "redis.admin",
                            *(f"redis.{g.user}" for g in isolation.REDIS_GRANTS),
                        ),
                        file="/etc/redis/users.acl",
                    ),
                ),
                volumes=(Volume("data", "/data", 5),),
                stateful=True,
                run_as_user=10001,  # any uid works with a writable /data (fsGroup)
            )
        )
    if prod:
        services.append(_postgres(config, hp))
        services.append(_neo4j(config, hp))
    if config.questdb is None:
        services.append(_questdb(config, hp))
    if config.object_store.mode == "minio":
        services.append(_minio(config, hp))

    names = {s.name for s in services}
    section = dict(config.seamless)
    section.setdefault("artifact_endpoint", ep.artifact_endpoint)
    section.setdefault("artifact_bucket", ep.bucket)
    # Schema governance (docs/schema-governance.md): canary until a subject is promoted;
    # `schema_registry_url` is passed on when the stack names a registry.
    section.setdefault("validation_mode", "canary")
    if COORDINATOR in names:
        section.setdefault("coordinator_url", f"http://{COORDINATOR}:{COORDINATOR_HTTP}")
    catalog = Catalog(
        config=config,
        services=tuple(_with_external_ports(config, ep, s) for s in services),
        endpoints=ep,
        sdk_section=section,
    )
    _check_edges(catalog)
    return catalog


def _with_external_ports(config: StackConfig, ep: Endpoints, svc: ServiceSpec) -> ServiceSpec:
    """Ports on managed dependencies this service dials (its egress beyond the stack)."""
    ports = set(svc.external_ports)
    if svc.grants.redis is not None and config.redis is not None:
        ports.add(ep.redis_port)
    if svc.grants.kafka is not None and config.kafka is not None:
        ports.update(int(b.rpartition(":")[2] or KAFKA_PORT) for b in ep.kafka_brokers)
    return dataclasses.replace(svc, external_ports=tuple(sorted(ports)))


def _os_grant(identity: str) -> ObjectStoreGrant | None:
    for g in isolation.OBJECT_STORE_GRANTS:
        if g.identity == identity:
            return g
    return None


def _kafka_grant(config: StackConfig, user: str) -> KafkaGrant:
    for g in isolation.kafka_grants(config.topic_prefix):
        if g.user == user:
            return g
    raise KeyError(user)


# The coordinator's clients (its COORDINATOR_TOKENS_FILE): the SDK's workers, and `ops`, an
# operator only (it may force a recovery, e.g. `seamless lease recover --force`, and claims
# nothing), so the workers' token can never take a live lease from another worker.
COORDINATOR_WORKER_CLIENT = "seamless-sdk"
COORDINATOR_OPERATOR_CLIENT = "ops"


def coordinator_tokens(credentials: Mapping[str, str]) -> dict[str, Any]:
    """The coordinator's tokens file, in its role form (see seamless.coordinator.settings)."""
    return {
        COORDINATOR_WORKER_CLIENT: credentials["coordinator.token"],
        COORDINATOR_OPERATOR_CLIENT: {
            "token": credentials["coordinator.operator_token"],
            "roles": ["operator"],
        },
    }


def _coordinator(
    config: StackConfig, ep: Endpoints, hp: Callable[[int], int | None], data_edges: list[str]
) -> ServiceSpec:
    grant = isolation.redis_grant(COORDINATOR)
    os_grant = _os_grant(COORDINATOR)
    assert os_grant is not None
    qdb_user = _questdb_user(config)
    edges = [*data_edges]
    if config.questdb is None:
        edges.append(QUESTDB)
    if config.object_store.mode == "minio":
        edges.append(MINIO)
    # The coordinator alone reads the ledger and the artifacts: managed ones are egress.
    external: list[int] = []
    if config.questdb is not None:
        external.append(_split(config.questdb.dsn).port or QUESTDB_PG)
    if config.object_store.mode == "aws":
        external.append(443)
    return ServiceSpec(
        name=COORDINATOR,
        image=config.coordinator_image,
        build_context="sdk" if config.build_coordinator_image else None,
        external_ports=tuple(external),
        ports=(
            Port("http", COORDINATOR_HTTP, hp(8090)),  # host 8090: gateway owns 8080
            Port("metrics", COORDINATOR_METRICS, hp(COORDINATOR_METRICS)),
        ),
        resources=_r("250m", "1", 256, 512),
        readiness=Probe(COORDINATOR_HTTP, "/healthz", initial_delay_s=5),
        liveness=Probe(COORDINATOR_HTTP, "/healthz", initial_delay_s=15),
        docker_health=_http_check_python(COORDINATOR_HTTP, "/healthz"),
        env={
            "COORDINATOR_ID": COORDINATOR,
            "BIND_ADDR": f"0.0.0.0:{COORDINATOR_HTTP}",
            "PROMETHEUS_PORT": str(COORDINATOR_METRICS),
            "ARTIFACT_ENDPOINT": ep.artifact_endpoint,
            "ARTIFACT_BUCKET": ep.bucket,
            "COORDINATOR_CONFIG": f"{SECRETS_DIR}/coordinator.yml",
            "COORDINATOR_TOKENS_FILE": f"{SECRETS_DIR}/tokens.yml",
            "COORDINATOR_KEY_PREFIX": f"{grant.key_prefix}:",
            "COORDINATOR_LEDGER_PREFIX": isolation.QUESTDB_TABLE_PREFIX,
        },
        # Every secret reaches the coordinator as a file (its settings file and its tokens
        # file), never as an env var: the same delivery works on Docker and Kubernetes.
        secrets=(
            SecretItem(
                key="coordinator.yml",
                render=lambda c: yaml.safe_dump(
                    {
                        "REDIS_DSN": isolation.redis_url(
                            grant.user,
                            c[f"redis.{COORDINATOR}"],
                            ep.redis_host,
                            ep.redis_port,
                            grant.db,
                        ),
                        "QUESTDB_DSN": _with_credentials(ep.questdb_dsn, qdb_user, c["questdb"]),
                        "ARTIFACT_ACCESS_KEY": c[f"objectstore.{COORDINATOR}.access_key"],
                        "ARTIFACT_SECRET_KEY": c[f"objectstore.{COORDINATOR}.secret_key"],
                    },
                    sort_keys=True,
                ),
                needs=(
                    f"redis.{COORDINATOR}",
                    "questdb",
                    f"objectstore.{COORDINATOR}.access_key",
                    f"objectstore.{COORDINATOR}.secret_key",
                ),
                file=f"{SECRETS_DIR}/coordinator.yml",
            ),
            SecretItem(
                key="tokens.yml",
                render=lambda c: yaml.safe_dump(coordinator_tokens(c), sort_keys=True),
                needs=("coordinator.token", "coordinator.operator_token"),
                file=f"{SECRETS_DIR}/tokens.yml",
            ),
        ),
        connects_to=tuple(edges),
        grants=Grants(
            redis=grant,
            object_store=os_grant,
            questdb_table_prefix=isolation.QUESTDB_TABLE_PREFIX,
        ),
        replicas=2 if config.profile == "prod" else 1,
        metrics_port=COORDINATOR_METRICS,
    )


def _controlbus(config: StackConfig, hp: Callable[[int], int | None]) -> ServiceSpec:
    nodes = config.controlbus_nodes
    k8s = config.platform == "kubernetes"
    # Each node advertises its own stable name: the pod's DNS name under the headless
    # service on Kubernetes, the container name on Docker.
    self_host = (
        f"$(POD_NAME).{CONTROLBUS}-headless.{config.namespace}.svc.cluster.local"
        if k8s
        else CONTROLBUS
    )
    seeds = (
        ",".join(
            f"{CONTROLBUS}-{i}.{CONTROLBUS}-headless.{config.namespace}.svc.cluster.local:{REDPANDA_RPC}"
            for i in range(nodes)
        )
        if k8s
        else f"{CONTROLBUS}:{REDPANDA_RPC}"
    )
    bootstrap = yaml.safe_dump(
        {
            "superusers": ["controlbus-admin"],
            "enable_sasl": True,
            "kafka_enable_authorization": True,
            "auto_create_topics_enabled": False,
            "default_topic_replications": min(nodes, 3),
        },
        sort_keys=True,
    )
    grants = isolation.kafka_grants(config.topic_prefix)
    user_secrets = tuple(
        SecretItem(
            key=user,
            render=(lambda u: lambda c: c[f"controlbus.{u}"])(user),
            needs=(f"controlbus.{user}",),
            file=f"/run/secrets/controlbus/{user}",
        )
        for user in ("controlbus-admin", *isolation.KAFKA_USERS)
    )
    return ServiceSpec(
        name=CONTROLBUS,
        image=config.images[CONTROLBUS],
        ports=(
            Port("kafka", KAFKA_PORT, hp(KAFKA_PORT)),
            Port("admin", REDPANDA_ADMIN, hp(REDPANDA_ADMIN)),
            Port("rpc", REDPANDA_RPC),
        ),
        resources=_r("500m", "1", 1024, 2048),
        readiness=Probe(REDPANDA_ADMIN, "/v1/status/ready", initial_delay_s=10),
        liveness=Probe(REDPANDA_ADMIN, "/v1/status/ready", initial_delay_s=30),
        docker_health=_http_check_curl(REDPANDA_ADMIN, "/v1/status/ready"),
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
            f"--kafka-addr=internal://0.0.0.0:{KAFKA_PORT}",
            f"--advertise-kafka-addr=internal://{self_host}:{KAFKA_PORT}",
            f"--rpc-addr=0.0.0.0:{REDPANDA_RPC}",
            f"--advertise-rpc-addr={self_host}:{REDPANDA_RPC}",
            f"--seeds={seeds}",
        ),
        config_files=(ConfigFile("bootstrap.yaml", "/etc/redpanda/.bootstrap.yaml", bootstrap),),
        secrets=user_secrets,
        pod_name_env="POD_NAME",
        jobs=(
            JobSpec(
                name=CONTROLBUS_ACL_JOB,
                image=config.images[CONTROLBUS],
                command=("/bin/sh", "/opt/seamless/acl-bootstrap.sh"),
                resources=_r("50m", "200m", 64, 128),
                run_as_user=101,
                config_files=(
                    ConfigFile(
                        "acl-bootstrap.sh",
                        "/opt/seamless/acl-bootstrap.sh",
                        isolation.kafka_acl_script(grants, brokers=f"{CONTROLBUS}:{KAFKA_PORT}"),
                    ),
                ),
                secrets=user_secrets,
                env={"HOME": "/tmp"},
            ),
        ),
        volumes=(Volume("data", "/var/lib/redpanda/data", 20 if config.profile == "prod" else 5),),
        replicas=nodes,
        stateful=True,
        run_as_user=101,
        scratch_paths=("/tmp", "/etc/redpanda"),
        metrics_port=REDPANDA_ADMIN,
        metrics_path="/public_metrics",
    )


def _postgres(config: StackConfig, hp: Callable[[int], int | None]) -> ServiceSpec:
    init = (
        "#!/bin/sh\nset -eu\n"
        'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL\n'
        "CREATE ROLE gateway LOGIN PASSWORD '$(cat /run/secrets/postgres/gateway)';\n"
        "CREATE DATABASE gateway OWNER gateway;\n"
        "CREATE ROLE worldservice LOGIN PASSWORD '$(cat /run/secrets/postgres/worldservice)';\n"
        "CREATE DATABASE worldservice OWNER worldservice;\n"
        "REVOKE ALL ON DATABASE gateway FROM PUBLIC;\n"
        "REVOKE ALL ON DATABASE worldservice FROM PUBLIC;\n"
        "SQL\n"
    )
    return ServiceSpec(
        name=POSTGRES,
        image=config.images[POSTGRES],
        ports=(Port("postgres", POSTGRES_PORT, hp(POSTGRES_PORT)),),
        resources=_r("250m", "1", 256, 1024),
        readiness=Probe(POSTGRES_PORT, initial_delay_s=5),
        liveness=Probe(POSTGRES_PORT, initial_delay_s=30),
        docker_health=("CMD", "pg_isready", "-U", "postgres"),
        env={
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres/superuser",
            "PGDATA": "/var/lib/postgresql/data/pgdata",
        },
        config_files=(ConfigFile("init.sh", "/docker-entrypoint-initdb.d/10-services.sh", init),),
        secrets=tuple(
            SecretItem(
                key=who,
                render=(lambda w: lambda c: c[f"postgres.{w}"])(who),
                needs=(f"postgres.{who}",),
                file=f"/run/secrets/postgres/{who}",
            )
            for who in ("superuser", GATEWAY, WORLDSERVICE)
        ),
        volumes=(Volume("data", "/var/lib/postgresql/data", 10),),
        stateful=True,
        run_as_user=70,
        scratch_paths=("/tmp", "/var/run/postgresql"),
    )


def _neo4j(config: StackConfig, hp: Callable[[int], int | None]) -> ServiceSpec:
    return ServiceSpec(
        name=NEO4J,
        image=config.images[NEO4J],
        ports=(
            Port("http", NEO4J_HTTP, hp(NEO4J_HTTP)),
            Port("bolt", NEO4J_BOLT, hp(NEO4J_BOLT)),
        ),
        resources=_r("500m", "2", 1024, 2048),
        readiness=Probe(NEO4J_HTTP, "/", initial_delay_s=20),
        liveness=Probe(NEO4J_HTTP, "/", initial_delay_s=60),
        docker_health=_tcp_check(NEO4J_BOLT),
        env={
            "NEO4J_AUTH_FILE": f"{SECRETS_DIR}/neo4j_auth",
            "NEO4J_server_memory_heap_max__size": "1G",
        },
        secrets=(
            SecretItem(
                key="neo4j_auth",
                render=lambda c: f"neo4j/{c['neo4j']}",
                needs=("neo4j",),
                file=f"{SECRETS_DIR}/neo4j_auth",
            ),
        ),
        volumes=(Volume("data", "/data", 10), Volume("logs", "/logs", 2)),
        stateful=True,
        run_as_user=7474,
        # The neo4j entrypoint rewrites conf/ at start-up: its root filesystem stays writable.
        read_only_root=False,
    )


def _questdb(config: StackConfig, hp: Callable[[int], int | None]) -> ServiceSpec:
    return ServiceSpec(
        name=QUESTDB,
        image=config.images[QUESTDB],
        ports=(
            Port("pg", QUESTDB_PG, hp(QUESTDB_PG)),
            Port("http", QUESTDB_HTTP, hp(QUESTDB_HTTP)),
            Port("ilp", QUESTDB_ILP, hp(QUESTDB_ILP)),
            Port("health", QUESTDB_HEALTH, hp(QUESTDB_HEALTH)),
        ),
        resources=_r("500m", "2", 1024, 2048),
        readiness=Probe(QUESTDB_HEALTH, "/status", initial_delay_s=10),
        liveness=Probe(QUESTDB_HEALTH, "/status", initial_delay_s=30),
        docker_health=_http_check_curl(QUESTDB_HEALTH, "/status"),
        secrets=(
            SecretItem(
                key="server.conf",
                render=lambda c: (
                    "pg.user=admin\n"
                    f"pg.password={c['questdb']}\n"
                    "metrics.enabled=true\n"
                    f"http.min.net.bind.to=0.0.0.0:{QUESTDB_HEALTH}\n"
                ),
                needs=("questdb",),
                file="/var/lib/questdb/conf/server.conf",
            ),
        ),
        volumes=(Volume("data", "/var/lib/questdb", 20 if config.profile == "prod" else 5),),
        stateful=True,
        run_as_user=10001,
        metrics_port=QUESTDB_HEALTH,
    )


def _minio(config: StackConfig, hp: Callable[[int], int | None]) -> ServiceSpec:
    return ServiceSpec(
        name=MINIO,
        image=config.images[MINIO],
        # QMTL maps MinIO's 9000 and 9001 onto host port 9000 twice, and QuestDB's HTTP
        # port is 9000 as well: MinIO is published on 9010/9011 instead.
        ports=(Port("api", MINIO_API, hp(9010)), Port("console", MINIO_CONSOLE, hp(9011))),
        resources=_r("250m", "1", 512, 1024),
        readiness=Probe(MINIO_API, "/minio/health/ready", initial_delay_s=5),
        liveness=Probe(MINIO_API, "/minio/health/live", initial_delay_s=15),
        docker_health=_http_check_curl(MINIO_API, "/minio/health/live"),
        command=("minio",),
        args=(
            "server",
            "/data",
            "--address",
            f":{MINIO_API}",
            "--console-address",
            f":{MINIO_CONSOLE}",
        ),
        env={
            "MINIO_ROOT_USER_FILE": f"{SECRETS_DIR}/minio_root_user",
            "MINIO_ROOT_PASSWORD_FILE": f"{SECRETS_DIR}/minio_root_password",
            "MINIO_PROMETHEUS_AUTH_TYPE": "public",
            "HOME": "/tmp",
        },
        secrets=(
            SecretItem(
                "minio_root_user",
                lambda c: c["minio.root_user"],
                ("minio.root_user",),
                file=f"{SECRETS_DIR}/minio_root_user",
            ),
            SecretItem(
                "minio_root_password",
                lambda c: c["minio.root_password"],
                ("minio.root_password",),
                file=f"{SECRETS_DIR}/minio_root_password",
            ),
        ),
        volumes=(Volume("data", "/data", 20 if config.profile == "prod" else 5),),
        stateful=True,
        run_as_user=10001,  # any uid works with a writable /data (fsGroup)
        metrics_port=MINIO_API,
        metrics_path="/minio/v2/metrics/cluster",
        jobs=(_minio_bootstrap(config),) if config.object_store.provisioner == "job" else (),
    )


def _minio_bootstrap(config: StackConfig) -> JobSpec:
    """Creates the bucket, one user per identity and its own-prefix policy from inside the
    cluster (so `pulumi up` needs to reach nothing but the Kubernetes API)."""
    bucket = config.object_store.bucket
    grants = isolation.OBJECT_STORE_GRANTS
    secret_dir = "/run/secrets/objectstore"
    policy_dir = "/opt/seamless/policies"
    keys = {"root_user": "minio.root_user", "root_password": "minio.root_password"}
    keys.update({g.identity: f"objectstore.{g.identity}.secret_key" for g in grants})
    return JobSpec(
        name=MINIO_BOOTSTRAP_JOB,
        image=config.images["minio-client"],
        command=("/bin/sh", "/opt/seamless/bootstrap.sh"),
        resources=_r("50m", "200m", 64, 128),
        run_as_user=10001,
        config_files=(
            ConfigFile(
                "bootstrap.sh",
                "/opt/seamless/bootstrap.sh",
                isolation.object_store_bootstrap_script(
                    bucket,
                    grants,
                    endpoint=f"{MINIO}:{MINIO_API}",
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
            SecretItem(
                key=name,
                render=(lambda k: lambda c: c[k])(key),
                needs=(key,),
                file=f"{secret_dir}/{name}",
            )
            for name, key in keys.items()
        ),
        env={"HOME": "/tmp", "MC_CONFIG_DIR": "/tmp/mc"},
    )


class CatalogError(ValueError):
    """The catalog is inconsistent: a dependency edge or host port is wrong."""


def _check_edges(catalog: Catalog) -> None:
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
