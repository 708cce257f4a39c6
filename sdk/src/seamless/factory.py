"""The profile-aware coordinator factory (QMTL's `_create_default_coordinator`, made strict).

- prod without `coordinator_url` → ConfigError naming `seamless.coordinator_url`;
- prod with it → the HTTP client, after `GET /healthz` passes within the bounded retries
  (3 attempts, 10 s apart, 5 s timeout by default; all configurable); if it never passes,
  start-up fails. Prod never falls back to a stub;
- dev without it → a warning and the in-memory coordinator;
- dev with it → the HTTP client after one health probe; if the probe fails, a warning and
  the in-memory coordinator (the seeds: the in-memory guard serves dev "when the URL is
  absent or the service is unavailable").
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from seamless.config import ENV_VARS, EXPECTED, LoadedConfig, SeamlessConfig
from seamless.coordination import Coordinator
from seamless.coordinator_client import CoordinatorClient, resolve_worker_id
from seamless.errors import ConfigError, CoordinatorError, CoordinatorStartupError
from seamless.health import HealthPolicy, await_health
from seamless.memory_coordinator import InMemoryCoordinator

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
        return InMemoryCoordinator(holder=worker)

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
            return InMemoryCoordinator(holder=resolve_worker_id(settings.seamless_worker_id, env))
    return client


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
