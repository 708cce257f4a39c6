"""The stack's configuration as one typed, validated object.

`parse_stack_config` is pure (a mapping in, a `StackConfig` out) so tests and docs can build
configs without Pulumi; `load_stack_config` is the only place that reads `pulumi.Config`.
Every user mistake raises `StackConfigError` naming the key and the valid form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from seamless.config.service_validation import is_broker_address

from infra import catalog

PROJECT = "seamless-stack"

Platform = Literal["docker", "kubernetes"]
Profile = Literal["dev", "prod"]
ObjectStoreMode = Literal["minio", "aws"]
# How the bundle's MinIO gets its bucket, users and policies: a Job inside the cluster
# (needs nothing but the kubernetes provider) or the minio provider from wherever
# `pulumi up` runs (it must reach MinIO's API: the dev stack's published port).
Provisioner = Literal["job", "provider"]
# Where generated passwords come from: pulumi-random, or the stack's own `credentials`
# secret (written once by `python -m infra.credentials --stack NAME`).
CredentialSource = Literal["random", "stack"]

# Images pinned by tag; prod refuses `latest` (see `_check_images`). Each service's default
# is declared with it (infra/catalog/<service>.py); Prometheus is the platforms' own.
DEFAULT_IMAGES: dict[str, str] = {**catalog.DEFAULT_IMAGES, "prometheus": "prom/prometheus:v3.1.0"}
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


class StackConfigError(ValueError):
    """A stack config value is missing or invalid; the message names key and valid form."""


@dataclass(frozen=True)
class ExternalQuestDB:
    """A managed QuestDB: the bundle deploys none and wires this DSN everywhere."""

    dsn: str
    username: str
    password: str  # a Pulumi secret in the stack file (`pulumi config set --secret`)


@dataclass(frozen=True)
class ExternalRedis:
    url: str  # host:port of the managed Redis; per-service ACL users are applied by its admin
    admin_password: str


@dataclass(frozen=True)
class ExternalKafka:
    brokers: tuple[str, ...]


@dataclass(frozen=True)
class ObjectStore:
    mode: ObjectStoreMode
    bucket: str
    region: str = "us-east-1"
    provisioner: Provisioner = "provider"


@dataclass(frozen=True)
class StackConfig:
    """Everything below `infra/__main__.py` reads; nothing else reads `pulumi.Config`."""

    stack: str
    platform: Platform
    profile: Profile
    namespace: str
    seamless: Mapping[str, Any]  # the SDK's `seamless` section, validated by the SDK
    images: Mapping[str, str]
    coordinator_image: str  # repository:tag to build (and push) as, or repository@sha256:…
    push_coordinator_image: bool
    build_coordinator_image: bool  # False: the image is given (a digest), nothing is built
    controlbus_nodes: int
    topic_prefix: str
    object_store: ObjectStore
    questdb: ExternalQuestDB | None = None
    redis: ExternalRedis | None = None
    kafka: ExternalKafka | None = None
    minio_admin_endpoint: str = "localhost:9000"  # where the minio provider reaches MinIO
    expose_host_ports: bool = False  # docker only: publish ports on the host
    qmtl: bool = True  # run gateway/dagmanager/worldservice (and the ControlBus they share)
    storage_class: str | None = None
    grafana_namespace_label: str = "grafana_dashboard"
    credential_source: CredentialSource = "random"
    # The stack's `credentials` secret (credential key -> value), when credential_source is
    # "stack"; held as plain text here and re-wrapped as Pulumi secrets where used.
    stack_credentials: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = field(default=())

    @property
    def coordinator_enabled(self) -> bool:
        return bool(self.seamless.get("coordinator_url"))

    @property
    def coordinator_host(self) -> str:
        return urlsplit(str(self.seamless.get("coordinator_url", ""))).hostname or ""


def _require(raw: Mapping[str, Any], key: str, expected: str) -> Any:
    if key not in raw or raw[key] in (None, ""):
        raise StackConfigError(f"{PROJECT}:{key} is required; expected {expected}")
    return raw[key]


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key) or {}
    if isinstance(value, str):  # Pulumi hands structured config over as JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise StackConfigError(f"{PROJECT}:{key} must be a mapping (JSON object)") from exc
    if not isinstance(value, Mapping):
        raise StackConfigError(f"{PROJECT}:{key} must be a mapping, got {type(value).__name__}")
    return value


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise StackConfigError(
            f"{PROJECT}:{key} is {value!r}; expected one of {', '.join(allowed)}"
        )
    return str(value)


def _check_images(images: Mapping[str, str], profile: str) -> None:
    for service, ref in images.items():
        if "@" in ref and not _DIGEST.search(ref):
            raise StackConfigError(
                f"{PROJECT}:images.{service} is {ref!r}; a digest must be @sha256:<64 hex>"
            )
        tag = ref.rsplit("/", 1)[-1].partition(":")[2] if "@" not in ref else "digest"
        if not tag:
            raise StackConfigError(
                f"{PROJECT}:images.{service} is {ref!r} with no tag; expected repository:tag"
            )
        if profile == "prod" and tag == "latest":
            raise StackConfigError(
                f"{PROJECT}:images.{service} uses ':latest', refused in prod; pin a version tag"
            )


def parse_stack_config(
    raw: Mapping[str, Any], *, stack: str, secrets: Mapping[str, str] | None = None
) -> StackConfig:
    """Build the typed config from the stack's plain values and its secret values."""
    secrets = secrets or {}
    platform = _choice(raw.get("platform", "docker"), "platform", ("docker", "kubernetes"))
    seamless = dict(_mapping(raw, "seamless"))
    profile = _choice(seamless.get("profile", "dev"), "seamless.profile", ("dev", "prod"))

    images = {**DEFAULT_IMAGES, **{str(k): str(v) for k, v in _mapping(raw, "images").items()}}
    _check_images(images, profile)
    coordinator_image = str(raw.get("coordinatorImage", "seamless-coordinator:0.1.0"))
    _check_images({"coordinatorImage": coordinator_image}, profile)
    by_digest = "@" in coordinator_image
    build_image = _flag(raw, "buildCoordinatorImage", not by_digest)
    if build_image and by_digest:
        raise StackConfigError(
            f"{PROJECT}:coordinatorImage is a digest, which cannot be built; give "
            "repository:tag to build, or set buildCoordinatorImage to false"
        )

    controlbus = _mapping(raw, "controlbus")
    nodes = int(controlbus.get("nodes", 3 if profile == "prod" else 1))
    if nodes not in (1, 3, 5):
        raise StackConfigError(f"{PROJECT}:controlbus.nodes is {nodes}; expected 1, 3 or 5")
    topic_prefix = str(controlbus.get("topicPrefix", "qmtl.controlbus."))
    if not topic_prefix.endswith("."):
        raise StackConfigError(
            f"{PROJECT}:controlbus.topicPrefix is {topic_prefix!r}; expected it to end with '.'"
        )
    kafka: ExternalKafka | None = None
    if controlbus.get("external"):
        brokers = controlbus.get("brokers") or []
        if not isinstance(brokers, list) or not brokers:
            raise StackConfigError(
                f"{PROJECT}:controlbus.brokers is required when controlbus.external is true; "
                "expected a list of host:port"
            )
        bad = [b for b in brokers if not is_broker_address(b)]
        if bad:
            raise StackConfigError(
                f"{PROJECT}:controlbus.brokers has {str(bad[0])[:80]!r}; expected a list of "
                "host:port, e.g. [kafka-1.example.com:9092]"
            )
        kafka = ExternalKafka(brokers=tuple(str(b).strip() for b in brokers))

    store = _mapping(raw, "objectStore")
    provisioner = _choice(
        store.get("provisioner", "job" if platform == "kubernetes" else "provider"),
        "objectStore.provisioner",
        ("job", "provider"),
    )
    if provisioner == "job" and platform != "kubernetes":
        raise StackConfigError(
            f"{PROJECT}:objectStore.provisioner is 'job', which only the kubernetes platform "
            "runs; expected provider"
        )
    object_store = ObjectStore(
        mode=_choice(store.get("mode", "minio"), "objectStore.mode", ("minio", "aws")),  # type: ignore[arg-type]
        bucket=str(store.get("bucket", seamless.get("artifact_bucket") or "qmtl-seamless")),
        region=str(store.get("region", "us-east-1")),
        provisioner=provisioner,  # type: ignore[arg-type]
    )

    questdb: ExternalQuestDB | None = None
    qdb = _mapping(raw, "questdb")
    if qdb.get("external"):
        questdb = ExternalQuestDB(
            dsn=str(_require(qdb, "dsn", "postgresql://HOST:8812/DB (questdb.dsn)")),
            username=str(qdb.get("username", "admin")),
            password=str(
                _require(
                    secrets,
                    "questdbPassword",
                    "a secret: pulumi config set --secret questdbPassword",
                )
            ),
        )

    redis: ExternalRedis | None = None
    red = _mapping(raw, "redis")
    if red.get("external"):
        redis = ExternalRedis(
            url=str(_require(red, "url", "host:port (redis.url)")),
            admin_password=str(
                _require(
                    secrets,
                    "redisAdminPassword",
                    "a secret: pulumi config set --secret redisAdminPassword",
                )
            ),
        )

    qmtl = _flag(raw, "qmtl", True)
    if not qmtl and profile == "prod":
        raise StackConfigError(
            f"{PROJECT}:qmtl is false, refused in prod: the prod bundle runs "
            f"{', '.join(catalog.QMTL_SERVICES)}; point images.<service> at your own images instead"
        )
    credential_source = _choice(
        raw.get("credentialSource", "random"), "credentialSource", ("random", "stack")
    )
    stack_credentials: dict[str, str] = {}
    if credential_source == "stack":
        text = secrets.get("credentials")
        if not text:
            raise StackConfigError(
                f"{PROJECT}:credentials is required when credentialSource is 'stack'; "
                f"run `python -m infra.credentials --stack {stack}` once to generate it"
            )
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in parsed.items()
        ):
            raise StackConfigError(
                f"{PROJECT}:credentials must be a JSON object of non-empty strings; "
                f"run `python -m infra.credentials --stack {stack}` to rewrite it"
            )
        stack_credentials = parsed

    warnings: list[str] = []
    if not seamless.get("coordinator_url") and profile == "dev":
        warnings.append(
            "seamless.coordinator_url is not set: dev runs without a coordinator "
            "(in-memory stub in the SDK); prod requires it"
        )

    return StackConfig(
        stack=stack,
        platform=platform,  # type: ignore[arg-type]
        profile=profile,  # type: ignore[arg-type]
        namespace=str(raw.get("namespace", "seamless")),
        seamless=seamless,
        images=images,
        coordinator_image=coordinator_image,
        push_coordinator_image=_flag(raw, "pushCoordinatorImage", platform == "kubernetes"),
        build_coordinator_image=build_image,
        controlbus_nodes=nodes,
        topic_prefix=topic_prefix,
        object_store=object_store,
        questdb=questdb,
        redis=redis,
        kafka=kafka,
        minio_admin_endpoint=str(raw.get("minioAdminEndpoint", "localhost:9000")),
        expose_host_ports=_flag(raw, "exposeHostPorts", platform == "docker"),
        qmtl=qmtl,
        storage_class=(str(raw["storageClass"]) if raw.get("storageClass") else None),
        credential_source=credential_source,  # type: ignore[arg-type]
        stack_credentials=stack_credentials,
        warnings=tuple(warnings),
    )


CONFIG_KEYS = (
    "platform",
    "namespace",
    "seamless",
    "images",
    "coordinatorImage",
    "pushCoordinatorImage",
    "buildCoordinatorImage",
    "credentialSource",
    "controlbus",
    "objectStore",
    "questdb",
    "redis",
    "minioAdminEndpoint",
    "exposeHostPorts",
    "storageClass",
    "qmtl",
)
SECRET_KEYS = ("questdbPassword", "redisAdminPassword", "credentials")


def load_stack_config() -> StackConfig:
    """Read the stack's Pulumi config once (the program's only `pulumi.Config` use)."""
    import pulumi

    cfg = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value: Any = cfg.get_object(key) if key in _OBJECT_KEYS else cfg.get(key)
        if value is not None:
            raw[key] = value
    secrets: dict[str, str] = {}
    for key in SECRET_KEYS:
        # Secret config is read as plain text here and re-wrapped with pulumi.Output.secret
        # wherever it is used, so it is never exported or logged in the clear.
        value = cfg.get(key)
        if value is not None:
            secrets[key] = value
    return parse_stack_config(raw, stack=pulumi.get_stack(), secrets=secrets)


_OBJECT_KEYS = frozenset({"seamless", "images", "controlbus", "objectStore", "questdb", "redis"})


def _flag(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean key: YAML's true/false, or the text `pulumi config set` stores."""
    value = raw.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise StackConfigError(f"{PROJECT}:{key} is {str(value)[:80]!r}; expected true or false")
    return value
