"""The catalog's data types: what a service is, knowing nothing of Docker or Kubernetes.

A service is one `ServiceSpec`: image, ports, env, config files, secrets (rendered from the
generated credentials), probes on routes the service really serves, resources, volumes,
the services it connects to, and the grants it holds on shared dependencies. Each service
module of this package builds its own spec from a `BuildContext` and describes itself to
the registry with one `Entry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from infra import isolation
from infra.isolation import KafkaGrant, ObjectStoreGrant, RedisGrant

if TYPE_CHECKING:  # stack_config takes its image defaults from the catalog's entries
    from infra.stack_config import StackConfig

# Credentials are a flat bag of generated values, keyed like "redis.gateway"; a secret item
# renders its document from that bag.
Credentials = Mapping[str, str]
Render = Callable[[Credentials], str]

SECRETS_DIR = "/run/secrets/seamless"


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
    # Files in its scratch paths are executed (a JVM extracting a JNI library to /tmp):
    # Docker mounts tmpfs `noexec` unless told otherwise (Kubernetes' emptyDir does not).
    scratch_exec: bool = False
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    build_context: str | None = None  # built from a Dockerfile instead of pulled
    metrics_port: int | None = None
    metrics_path: str = "/metrics"
    pod_name_env: str | None = None  # an env var carrying the replica's own name
    jobs: tuple[JobSpec, ...] = ()  # one-shot tasks run against this service once it is up
    external_ports: tuple[int, ...] = ()  # ports of managed (out-of-stack) dependencies
    scheme: str = "http"  # of the endpoint on its first port the stack exports

    def port(self, name: str) -> int:
        for p in self.ports:
            if p.name == name:
                return p.port
        raise KeyError(f"{self.name} has no port {name!r}")


@dataclass(frozen=True)
class Endpoints:
    """Where each dependency lives for this stack (in-bundle service or managed override)."""

    redis_host: str
    redis_port: int
    questdb_dsn: str  # without credentials
    kafka_brokers: tuple[str, ...]
    artifact_endpoint: str
    bucket: str

    def redis_url(self, grant: RedisGrant, credentials: Credentials) -> str:
        """The DSN of a service's own Redis user: its password, its DB."""
        password = credentials[f"redis.{grant.user}"]
        return isolation.redis_url(grant.user, password, self.redis_host, self.redis_port, grant.db)


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


class CatalogError(ValueError):
    """The catalog is inconsistent: a dependency edge or host port is wrong."""


@dataclass(frozen=True)
class BuildContext:
    """What a service module builds its spec from: the stack config, its endpoints, and the
    grants every registered service holds (the shared dependencies provision them all)."""

    config: StackConfig
    endpoints: Endpoints
    in_memory: bool  # dev: QMTL's services run their in-memory backends
    redis_grants: tuple[RedisGrant, ...]
    object_store_grants: tuple[ObjectStoreGrant, ...]
    kafka_users: tuple[str, ...]
    postgres_databases: tuple[str, ...]

    @property
    def prod(self) -> bool:
        return self.config.profile == "prod"

    def host_port(self, port: int) -> int | None:
        """`port` published on the Docker host when the stack publishes ports."""
        return port if self.config.expose_host_ports else None


@dataclass(frozen=True)
class QmtlSection:
    """A QMTL service's own section of its `config.yml` and the credentials it reads beyond
    its Redis and ControlBus users' (which every QMTL service has).

    `render` gets the document's broker list too: one list object, so YAML writes it once.
    """

    needs: tuple[str, ...]
    render: Callable[[Credentials, list[str]], dict[str, object]]


@dataclass(frozen=True)
class Entry:
    """One service as the registry knows it, whether or not a stack runs it.

    Its grants and credentials hold on every stack (the shared dependencies are provisioned
    for all of them); `build` returns None when this stack leaves the service out.
    """

    name: str
    build: Callable[[BuildContext], ServiceSpec | None]
    images: Mapping[str, str] = field(default_factory=dict)  # default images (its jobs' too)
    redis: RedisGrant | None = None  # its Redis ACL user, key prefix and DB
    object_store: tuple[ObjectStoreGrant, ...] = ()  # identities under their own prefix
    kafka_user: bool = False  # a ControlBus SASL user on the stack's topic prefix
    postgres_database: str | None = None  # its own database and role on a bundled Postgres
    http_routes: tuple[tuple[int, str], ...] = ()  # (port, path) it serves, for probes
    sdk_settings: Mapping[str, str] = field(default_factory=dict)  # when the stack runs it
    sdk_credentials: tuple[str, ...] = ()  # what the SDK section hands out for it, always
    qmtl: Callable[[BuildContext], QmtlSection] | None = None  # QMTL's own: its config.yml


def resources(cpu_req: str, cpu_lim: str, mem_req: int, mem_lim: int) -> Resources:
    return Resources(cpu_req, cpu_lim, mem_req, mem_lim)


def http_check_python(port: int, path: str) -> tuple[str, ...]:
    # QMTL and coordinator images are python-slim: no curl, but python is always there.
    return (
        "CMD",
        "python",
        "-c",
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)",
    )


def http_check_curl(port: int, path: str) -> tuple[str, ...]:
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}")


def tcp_check(port: int) -> tuple[str, ...]:
    return ("CMD-SHELL", f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'")


def credential_file(key: str, credential: str, path: str) -> SecretItem:
    """A secret file `key` at `path` holding one generated credential as it is."""
    return SecretItem(key=key, render=lambda c: c[credential], needs=(credential,), file=path)
