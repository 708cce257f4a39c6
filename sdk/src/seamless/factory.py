"""The profile-aware coordinator factory (QMTL's `_create_default_coordinator`, made strict).

- prod without `coordinator_url` → ConfigError naming `seamless.coordinator_url`;
- prod with it → the HTTP client, after `GET /healthz` passes within the bounded retries
  (3 attempts, 10 s apart, 5 s timeout by default; all configurable); if it never passes,
  start-up fails. Prod never falls back to a stub;
- dev without it → a warning and the in-memory coordinator;
- dev with it → the HTTP client after one health probe; if the probe fails, a warning and
  the in-memory coordinator (the seeds: the in-memory guard serves dev "when the URL is
  absent or the service is unavailable").

`create_provider` builds a ready data provider from the same config in one call (seed 003's
settings object, seed 004's preset on-ramp)::

    config = load_config(Path("qmtl.yml"))          # the file + env the CLI validates
    provider = await create_provider(config, fetcher=HistoricalFetcher())
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import structlog

from seamless.config.loading import LoadedConfig
from seamless.config.model import ENV_VARS, EXPECTED, SeamlessConfig
from seamless.coordination.client import CoordinatorClient, resolve_worker_id
from seamless.coordination.health import HealthPolicy, await_health
from seamless.coordination.interface import Coordinator
from seamless.data.artifacts import ArtifactPublisher, s3_client
from seamless.data.backfill import BackfillConfig
from seamless.data.conformance import ConformancePipeline
from seamless.data.fetcher import DataFetcher
from seamless.data.live import LiveFeed
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.sla import SLAPolicy
from seamless.data.storage import BarStore, MemoryBarStore, QuestDBBarStore
from seamless.errors import ConfigError, CoordinatorError, CoordinatorStartupError
from seamless.metrics import SeamlessMetrics

log = structlog.get_logger("seamless.factory")

PROD_REQUIRES_URL = "Prod profile requires seamless.coordinator_url"


def health_policy(settings: SeamlessConfig) -> HealthPolicy:
    return HealthPolicy(
        attempts=settings.health_attempts,
        backoff_seconds=settings.health_backoff_seconds,
        timeout_seconds=settings.health_timeout_seconds,
    )


async def create_coordinator(
    config: SeamlessConfig | LoadedConfig,
    *,
    env: Mapping[str, str] | None = None,
    policy: HealthPolicy | None = None,
) -> Coordinator:
    """The coordinator the profile calls for; see the module docstring for the rules."""
    if isinstance(config, LoadedConfig):
        settings, url_source = config.settings, config.source_of("coordinator_url")
    else:
        settings, url_source = config, "config"
    policy = policy if policy is not None else health_policy(settings)
    url = settings.coordinator_url

    if url is None:
        if settings.profile == "prod":
            raise ConfigError(
                f"{PROD_REQUIRES_URL} (not set in {url_source} nor env var "
                f"{ENV_VARS['coordinator_url']}); expected {EXPECTED['coordinator_url']}",
                key="seamless.coordinator_url",
                source=url_source,
                expected=EXPECTED["coordinator_url"],
            )
        worker = resolve_worker_id(settings.seamless_worker_id, env)
        log.warning(
            "seamless.coordinator.in_memory",
            profile="dev",
            reason="seamless.coordinator_url is not set",
            detail="leases are not shared between processes; set coordinator_url to share them",
        )
        return _in_memory(worker)

    client = CoordinatorClient.from_config(settings, env=env)
    if settings.profile == "prod":
        await _startup_health(client, url, policy)
    else:
        try:
            await client.health(timeout=policy.timeout_seconds)
        except CoordinatorError as exc:
            # The seeds' dev rule: fall back to the in-memory guard when the service is
            # unavailable at start-up, and say so (prod never does this).
            await client.aclose()
            log.warning(
                "seamless.coordinator.unhealthy",
                profile="dev",
                url=url,
                error=str(exc),
                fallback="in_memory",
            )
            return _in_memory(resolve_worker_id(settings.seamless_worker_id, env))
    return client


def _in_memory(worker: str) -> Coordinator:
    # Imported here: the in-memory coordinator brings the service's lease store, fakeredis
    # and lupa (~0.6 s of imports), which a process using the real service never needs.
    from seamless.coordination.memory import InMemoryCoordinator

    return InMemoryCoordinator(holder=worker)


async def _startup_health(client: CoordinatorClient, url: str, policy: HealthPolicy) -> None:
    def report(attempt: int, exc: BaseException) -> None:
        log.warning(
            "seamless.coordinator.health_failed",
            url=url,
            attempt=attempt,
            attempts=policy.attempts,
            error=str(exc),
        )

    async def probe() -> None:
        await client.health(timeout=policy.timeout_seconds)

    try:
        await await_health(probe, policy, on_failure=report)
    except CoordinatorError as exc:
        await client.aclose()
        raise CoordinatorStartupError(
            f"prod start-up stopped: the coordinator at {url} did not pass GET /healthz "
            f"within {policy.attempts} attempt(s) {policy.backoff_seconds:g} s apart "
            f"({policy.timeout_seconds:g} s timeout each): {exc}"
        ) from exc


QUESTDB_HTTP_PORT = 9000  # QuestDB's default HTTP port: /exp reads and ILP/HTTP writes
ARTIFACT_KEY_ENV = ("ARTIFACT_ACCESS_KEY", "ARTIFACT_SECRET_KEY")


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider needs beyond the `seamless` config section, with defaults that
    serve most callers. QuestDB's HTTP endpoint defaults to the ``questdb_dsn`` host on
    port 9000 (reads over /exp, writes over ILP/HTTP)."""

    strategy: Strategy = Strategy.SEAMLESS
    backfill: BackfillConfig = field(default_factory=BackfillConfig)
    cache_ttl_s: float = 60.0
    cache_max_entries: int = 128
    world_id: str = ""
    questdb_http_url: str | None = None
    table_prefix: str = "seamless_"
    pg_pool_size: int = 4
    columnar_reads: bool = True
    metrics: SeamlessMetrics | None = None
    clock: Callable[[], float] | None = None
    health: HealthPolicy | None = None


async def create_provider(
    config: SeamlessConfig | LoadedConfig,
    *,
    fetcher: DataFetcher | None = None,
    live_feed: LiveFeed | None = None,
    settings: ProviderSettings | None = None,
    env: Mapping[str, str] | None = None,
) -> SeamlessDataProvider:
    """A ready provider from a validated `seamless` config: the coordinator through the
    profile rules above, the QuestDB store from ``questdb_dsn``, the SLA and conformance
    presets by name, and the artifact publisher from the ``artifact_*`` keys. Raises
    `ConfigError` naming the key when prod lacks what it needs (never a silent stub)."""
    loaded = config if isinstance(config, LoadedConfig) else None
    cfg = loaded.settings if loaded is not None else config
    assert isinstance(cfg, SeamlessConfig)
    config_dir = loaded.config_dir if loaded is not None else None
    options = settings if settings is not None else ProviderSettings()
    metrics = options.metrics if options.metrics is not None else SeamlessMetrics.default()
    # presets first: a bad name fails before any connection is opened
    sla = SLAPolicy.preset(cfg.sla_preset, cfg.presets_file, config_dir)
    conformance = ConformancePipeline.preset(cfg.conformance_preset, cfg.presets_file, config_dir)
    store = bar_store(cfg, options, source=_source(loaded, "questdb_dsn"))
    coordinator = await create_coordinator(config, env=env, policy=options.health)
    publisher = artifact_publisher(cfg, metrics, env)  # its thread starts last
    return SeamlessDataProvider(
        store=store,
        fetcher=fetcher,
        coordinator=coordinator,
        live_feed=live_feed,
        strategy=options.strategy,
        sla=sla,
        conformance=conformance,
        backfill=options.backfill,
        publisher=publisher,
        metrics=metrics,
        clock=options.clock,
        cache_ttl_s=options.cache_ttl_s,
        cache_max_entries=options.cache_max_entries,
        world_id=options.world_id,
    )


def _source(loaded: LoadedConfig | None, key: str) -> str:
    return loaded.source_of(key) if loaded is not None else "config"


def bar_store(cfg: SeamlessConfig, options: ProviderSettings, *, source: str) -> BarStore:
    """QuestDB from ``questdb_dsn``; without it, prod is an error and dev gets an
    in-process store (with a warning: bars are not shared between processes)."""
    dsn = cfg.questdb_dsn
    if dsn is None:
        if cfg.profile == "prod":
            raise ConfigError(
                f"Prod profile requires seamless.questdb_dsn (not set in the config nor env var "
                f"{ENV_VARS['questdb_dsn']}); expected {EXPECTED['questdb_dsn']}",
                key="seamless.questdb_dsn",
                source=source,
                expected=EXPECTED["questdb_dsn"],
            )
        log.warning(
            "seamless.storage.in_memory",
            profile="dev",
            reason="seamless.questdb_dsn is not set",
        )
        return MemoryBarStore()
    http_url = options.questdb_http_url
    if http_url is None:
        host = urlsplit(dsn).hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        http_url = f"http://{host}:{QUESTDB_HTTP_PORT}"
    addr = urlsplit(http_url).netloc
    scheme = "https" if http_url.startswith("https://") else "http"
    return QuestDBBarStore(
        pg_dsn=dsn,
        ilp_conf=f"{scheme}::addr={addr};",
        table_prefix=options.table_prefix,
        pool_size=options.pg_pool_size,
        http_url=http_url if options.columnar_reads else None,
    )


def artifact_publisher(
    cfg: SeamlessConfig, metrics: SeamlessMetrics, env: Mapping[str, str] | None
) -> ArtifactPublisher | None:
    """The publisher when ``artifacts_enabled`` and ``publish_fingerprint``; credentials
    from ``artifact_access_key``/``artifact_secret_key``, else ``ARTIFACT_ACCESS_KEY``/
    ``ARTIFACT_SECRET_KEY`` (else boto3's own chain)."""
    if not (cfg.artifacts_enabled and cfg.publish_fingerprint):
        return None
    if cfg.artifact_bucket is None:
        raise ConfigError(
            "seamless.artifacts_enabled is true but seamless.artifact_bucket is not set; "
            f"expected {EXPECTED['artifact_bucket']}",
            key="seamless.artifact_bucket",
            expected=EXPECTED["artifact_bucket"],
        )
    values = os.environ if env is None else env
    access, secret = (values.get(name) for name in ARTIFACT_KEY_ENV)
    if cfg.artifact_access_key is not None and cfg.artifact_secret_key is not None:
        access = cfg.artifact_access_key.get_secret_value()
        secret = cfg.artifact_secret_key.get_secret_value()
    s3 = s3_client(cfg.artifact_endpoint, access, secret)
    return ArtifactPublisher(s3, cfg.artifact_bucket, metrics=metrics)


__all__ = [
    "PROD_REQUIRES_URL",
    "ProviderSettings",
    "artifact_publisher",
    "bar_store",
    "create_coordinator",
    "create_provider",
    "health_policy",
]
