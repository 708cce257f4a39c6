"""The coordinator start-up health check: `GET /healthz` with bounded retries (tenacity).

QMTL's numbers are the defaults: 3 attempts, 10 s apart, 5 s timeout each. The same policy
serves `seamless config validate` (blocking, sync) and the factory (async).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_fixed,
)

from seamless.errors import CoordinatorAuthError, CoordinatorUnavailable

HEALTH_PATH = "/healthz"
# QMTL's scripts accept any of these in `status` or `state`.
HEALTHY_WORDS = frozenset({"ok", "healthy", "pass"})


@dataclass(frozen=True)
class HealthPolicy:
    attempts: int = 3
    backoff_seconds: float = 10.0
    timeout_seconds: float = 5.0


def healthy_payload(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    return any(str(body.get(field, "")).lower() in HEALTHY_WORDS for field in ("status", "state"))


def interpret_health_response(url: str, response: httpx.Response) -> None:
    """Return if the answer says healthy, else raise with the reason."""
    if response.status_code in (401, 403):
        raise CoordinatorAuthError(f"GET {url} refused our credentials ({response.status_code})")
    if response.status_code != 200:
        raise CoordinatorUnavailable(f"GET {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise CoordinatorUnavailable(f"GET {url} answered a body that is not JSON") from None
    if not healthy_payload(body):
        raise CoordinatorUnavailable(f"GET {url} answered unhealthy: {body!r:.200}")


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def check_health_sync(base_url: str, policy: HealthPolicy, token: str | None = None) -> int:
    """Blocking health check with retries; returns the number of attempts it took.

    Raises CoordinatorUnavailable (after the last attempt) or CoordinatorAuthError (at once).
    """
    url = base_url.rstrip("/") + HEALTH_PATH
    attempts = 0
    with httpx.Client(timeout=policy.timeout_seconds, headers=_headers(token)) as client:
        for attempt in Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_fixed(policy.backoff_seconds),
            retry=retry_if_exception_type(CoordinatorUnavailable),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                try:
                    response = client.get(url)
                except httpx.HTTPError as exc:
                    raise CoordinatorUnavailable(
                        f"GET {url} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                interpret_health_response(url, response)
    return attempts


async def await_health(
    probe: Callable[[], Awaitable[None]],
    policy: HealthPolicy,
    on_failure: Callable[[int, BaseException], None] | None = None,
) -> int:
    """Run an async `probe` (e.g. `coordinator.health`) with the policy's retries.

    Returns the number of attempts; re-raises the last CoordinatorUnavailable.
    """
    attempts = 0
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_fixed(policy.backoff_seconds),
        retry=retry_if_exception_type(CoordinatorUnavailable),
        reraise=True,
    ):
        with attempt:
            attempts += 1
            try:
                await probe()
            except CoordinatorUnavailable as exc:
                if on_failure is not None:
                    on_failure(attempts, exc)
                raise
    return attempts
