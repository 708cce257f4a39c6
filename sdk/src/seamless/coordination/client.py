"""Async HTTP client of the backfill coordinator (implements
`seamless.coordination.interface.Coordinator`).

Unlike QMTL's client, which swallowed network errors and answered "no lease" (so an
unreachable coordinator silently skipped backfills), every failure to get an answer here
raises `CoordinatorUnavailable`: network errors, timeouts, 5xx, truncated or unparsable
bodies, and rate limiting that outlasts its retries. Only an explicit 409 from the
coordinator means "not granted".

A request that got no answer (connection reset, ReadError, the server closing mid-reply,
a timeout) may still have been applied, so it is sent again with the very same body: every
claim carries a fresh request id and the service answers a repeated claim, complete or
fail as it answered the first (see coordinator/store.py). Without that, a complete whose
reply was lost came back 409 stale, and a claim whose reply was lost held its key until
the lease ran out.

One pooled `httpx.AsyncClient` per instance (QMTL opened a client per request), over
`seamless.coordination.transport.KeepAliveTransport` for plain-http URLs (httpx's own pool scans
every connection on every request).
"""

from __future__ import annotations

import email.utils
import os
import socket
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState

from seamless.config.model import SeamlessConfig
from seamless.coordination.health import HEALTH_PATH, interpret_health_response
from seamless.coordination.interface import ClaimOutcome, Granted, NotGranted
from seamless.coordination.protocol import (
    CLIENT_KEEP_ALIVE_SECONDS,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    ConflictResponse,
    ErrorResponse,
    FailRequest,
    Lease,
    LeaseInfo,
    RatioResponse,
    RenewRequest,
    RenewResponse,
    validate_request,
)
from seamless.coordination.transport import KeepAliveTransport
from seamless.errors import (
    ConfigError,
    CoordinatorAuthError,
    CoordinatorRequestRejected,
    CoordinatorUnavailable,
    InvalidRequestError,
    LeaseLost,
)

DEFAULT_TIMEOUT_SECONDS = 2.0  # QMTL's client timeout
# Worker identity, QMTL's order after the config key `seamless_worker_id`.
WORKER_ENV_VARS: tuple[str, ...] = ("QMTL_SEAMLESS_WORKER", "QMTL_WORKER_ID", "HOSTNAME")

_Model = TypeVar("_Model", bound=BaseModel)


def resolve_worker_id(configured: str | None, env: Mapping[str, str] | None = None) -> str:
    """`seamless_worker_id` from config, else QMTL_SEAMLESS_WORKER, QMTL_WORKER_ID, HOSTNAME
    (then the OS host name, so a worker always has a name)."""
    if configured and configured.strip():
        return configured.strip()
    source = os.environ if env is None else env
    for var in WORKER_ENV_VARS:
        value = source.get(var, "").strip()
        if value:
            return value
    return socket.gethostname()


class _RateLimited(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"rate limited (Retry-After: {retry_after})")
        self.retry_after = retry_after


class _NoAnswer(Exception):
    """The request may or may not have reached the service; no reply came back."""


# httpx errors after which the same request is worth sending again. Excluded: errors that
# would repeat identically (a malformed request, an unsupported URL scheme).
_NO_ANSWER_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class CoordinatorClient:
    """Claim / renew / complete / fail / inspect leases over HTTP with bearer-token auth."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        worker_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        rate_limit_attempts: int = 4,
        max_retry_after: float = 5.0,
        default_retry_after: float = 0.2,
        transport_attempts: int = 3,
        transport_backoff: float = 0.05,
        transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.worker_id = resolve_worker_id(worker_id, env)
        self.rate_limit_attempts = max(1, rate_limit_attempts)
        self.max_retry_after = max_retry_after
        self.default_retry_after = default_retry_after
        self.transport_attempts = max(1, transport_attempts)
        self.transport_backoff = transport_backoff
        headers = {
            "Accept": "application/json",
            "User-Agent": "seamless-sdk",
            # The service rate-limits per worker identity inside the authenticated client.
            "X-Worker-Id": self.worker_id[:128].encode("ascii", "replace").decode(),
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if transport is None and _plain_http_without_proxy(self.base_url):
            # no per-request scan of the pool (see seamless.coordination.transport); https and
            # proxied URLs keep httpx's own transport
            transport = KeepAliveTransport(keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_config(
        cls, settings: SeamlessConfig, *, env: Mapping[str, str] | None = None
    ) -> CoordinatorClient:
        if settings.coordinator_url is None:
            raise ConfigError(
                "seamless.coordinator_url is not set; expected an http(s) URL such as "
                "http://seamless-coordinator:8080",
                key="seamless.coordinator_url",
                expected="an http(s) URL with a host",
            )
        return cls(
            settings.coordinator_url,
            token=settings.token,
            worker_id=settings.seamless_worker_id,
            timeout=settings.coordinator_timeout_seconds,
            env=env,
        )

    async def __aenter__(self) -> CoordinatorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the Coordinator interface -----------------------------------------------------------

    async def claim(
        self,
        key: str,
        lease_ms: int,
        *,
        job_id: str | None = None,
        shards_total: int | None = None,
        request_id: str | None = None,
    ) -> ClaimOutcome:
        """`request_id` names this claim across retries; a fresh one by default. Pass the
        id of an earlier claim whose outcome is unknown to get its lease back if it was
        granted."""
        body = _request_body(
            ClaimRequest,
            key=key,
            lease_ms=lease_ms,
            job_id=job_id,
            shards_total=shards_total,
            holder=self.worker_id,
            request_id=request_id or uuid.uuid4().hex,
        )
        response = await self._send("POST", "/v1/leases/claim", body)
        if response.status_code == 200:
            claimed = _parse(ClaimResponse, response)
            return Granted(lease=claimed.lease, completion_ratio=claimed.completion_ratio)
        if response.status_code == 409:
            conflict = _parse(ConflictResponse, response)
            if conflict.reason == "stale":
                raise CoordinatorUnavailable(
                    f"claim of {key!r}: unexpected 409 stale from {self.base_url}"
                )
            return NotGranted(
                key=key,
                reason=conflict.reason,
                lease_until_ms=conflict.lease_until_ms,
                completion_ratio=conflict.completion_ratio,
            )
        raise self._unexpected(response, "claim", key)

    async def renew(self, lease: Lease, lease_ms: int) -> Lease:
        body = _request_body(RenewRequest, key=lease.key, token=lease.token, lease_ms=lease_ms)
        response = await self._send("POST", "/v1/leases/renew", body)
        if response.status_code == 200:
            return _parse(RenewResponse, response).lease
        raise self._lease_error(response, "renew", lease)

    async def complete(self, lease: Lease) -> RatioResponse:
        body = _request_body(CompleteRequest, key=lease.key, token=lease.token)
        response = await self._send("POST", "/v1/leases/complete", body)
        if response.status_code == 200:
            return _parse(RatioResponse, response)
        raise self._lease_error(response, "complete", lease)

    async def fail(self, lease: Lease, reason: str) -> RatioResponse:
        body = _request_body(FailRequest, key=lease.key, token=lease.token, reason=reason[:2048])
        response = await self._send("POST", "/v1/leases/fail", body)
        if response.status_code == 200:
            return _parse(RatioResponse, response)
        raise self._lease_error(response, "fail", lease)

    async def inspect(self, key: str) -> LeaseInfo:
        if not key:
            raise InvalidRequestError("key", key, "a non-empty lease key")
        response = await self._send("GET", "/v1/leases/" + quote(key, safe=""), None)
        if response.status_code == 200:
            return _parse(LeaseInfo, response)
        raise self._unexpected(response, "inspect", key)

    async def health(self, *, timeout: float | None = None) -> None:
        """Return if `GET /healthz` says healthy; `timeout` overrides the request timeout."""
        # Not retried: a probe reports promptly, and its callers have their own backoff.
        response = await self._send("GET", HEALTH_PATH, None, timeout=timeout, attempts=1)
        interpret_health_response(self.base_url + HEALTH_PATH, response)

    # --- transport ---------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        timeout: float | None = None,
        attempts: int | None = None,
    ) -> httpx.Response:
        """One request, sent again with the same body on 429 (the coordinator did nothing)
        and when no answer came back (every lease route answers a repeat as it answered the
        first request); each has its own budget of attempts. Every failure to get an answer
        becomes CoordinatorUnavailable."""
        where = f"{method} {self.base_url}{path}"
        budget = _RetryBudget(
            rate_limited=self.rate_limit_attempts,
            no_answer=self.transport_attempts if attempts is None else attempts,
        )
        try:
            async for attempt in AsyncRetrying(
                stop=budget.spent,
                wait=lambda state: self._wait(state, budget),
                retry=budget.retry,
                reraise=True,
            ):
                with attempt:
                    return await self._send_once(method, path, body, timeout)
        except _RateLimited as exc:
            raise CoordinatorUnavailable(
                f"{where}: still rate limited (429) after {self.rate_limit_attempts} attempts"
            ) from exc
        except _NoAnswer as exc:
            tries = budget.used[_NoAnswer]
            raise CoordinatorUnavailable(
                f"{where}: {exc} (no answer to {tries} attempt{'s' if tries > 1 else ''})"
            ) from exc.__cause__
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _send_once(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: float | None
    ) -> httpx.Response:
        where = f"{method} {self.base_url}{path}"
        per_request: Any = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        try:
            # Not streamed: the whole body is read here, so a truncated body fails now.
            response = await self._http.request(method, path, json=body, timeout=per_request)
        except httpx.TimeoutException as exc:
            raise _NoAnswer(f"timed out ({type(exc).__name__})") from exc
        except _NO_ANSWER_ERRORS as exc:
            raise _NoAnswer(f"{type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise CoordinatorUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429:
            raise _RateLimited(parse_retry_after(response.headers.get("Retry-After")))
        if status == 401:
            raise CoordinatorAuthError(
                f"{where}: the coordinator refused our credentials (HTTP {status}); "
                "check seamless.coordinator_token / QMTL_SEAMLESS_COORDINATOR_TOKEN"
            )
        if status == 403:
            # A valid token whose client may not do this: another client's lease
            # (not_owner) or a missing role. The service's detail says which.
            raise CoordinatorAuthError(f"{where}: HTTP 403 {_error_text(response)}")
        if status >= 500:
            raise CoordinatorUnavailable(f"{where}: HTTP {status} {_snippet(response)}")
        return response

    def _wait(self, state: RetryCallState, budget: _RetryBudget) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _RateLimited):
            wait = self.default_retry_after if exc.retry_after is None else exc.retry_after
            return min(wait, self.max_retry_after)
        # No answer: a short exponential backoff (0.05 s, 0.1 s, ...), just enough for a
        # restarting replica or a dropped connection to be replaced.
        return float(self.transport_backoff * 2 ** (budget.used[_NoAnswer] - 1))

    def _lease_error(self, response: httpx.Response, op: str, lease: Lease) -> Exception:
        if response.status_code == 409:
            conflict = _parse(ConflictResponse, response)
            return LeaseLost(lease.key, lease.token, conflict.detail or conflict.reason)
        return self._unexpected(response, op, lease.key)

    def _unexpected(self, response: httpx.Response, op: str, key: str) -> Exception:
        status = response.status_code
        if 400 <= status < 500:
            detail = _error_text(response)
            if status == 404 and op != "inspect":
                # QMTL read 404 as "no lease"; here it means a wrong URL or an old service.
                return CoordinatorUnavailable(
                    f"{op} {key!r}: HTTP 404 from {self.base_url} ({detail}); "
                    "is seamless.coordinator_url the coordinator?"
                )
            return CoordinatorRequestRejected(f"{op} {key!r}: HTTP {status}: {detail}")
        return CoordinatorUnavailable(
            f"{op} {key!r}: unexpected HTTP {status} {_snippet(response)}"
        )


def _plain_http_without_proxy(url: str) -> bool:
    """Whether `url` is plain http and no proxy environment variable is set (with one,
    httpx's own transport routes as it always did)."""
    if urllib.parse.urlsplit(url).scheme != "http":
        return False
    proxies = urllib.request.getproxies_environment()
    return not any(k in proxies for k in ("http", "all"))


class _RetryBudget:
    """Attempts per kind of failure: a request rate limited twice still gets its full
    budget of attempts for a dropped reply, and the other way round."""

    def __init__(self, *, rate_limited: int, no_answer: int) -> None:
        self.limits = {_RateLimited: rate_limited, _NoAnswer: no_answer}
        self.used: Counter[type[BaseException]] = Counter()

    def retry(self, state: RetryCallState) -> bool:
        kind = _failure_kind(state)
        if kind is None:
            return False
        self.used[kind] += 1  # tenacity asks once per failed attempt, before `spent`
        return True

    def spent(self, state: RetryCallState) -> bool:
        kind = _failure_kind(state)
        return kind is None or self.used[kind] >= self.limits[kind]


def _failure_kind(state: RetryCallState) -> type[BaseException] | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    return type(exc) if isinstance(exc, _RateLimited | _NoAnswer) else None


def _request_body(model: type[_Model], **fields: Any) -> dict[str, Any]:
    """Validate a request before sending, so a bad argument is named locally."""
    return validate_request(model, **fields).model_dump(mode="json", exclude_none=True)


def _parse(model: type[_Model], response: httpx.Response) -> _Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise CoordinatorUnavailable(
            f"{response.request.method} {response.request.url}: HTTP {response.status_code} "
            f"with a body that is not a valid {model.__name__}: {_snippet(response)}"
        ) from exc


def _error_text(response: httpx.Response) -> str:
    """`error (field f): detail` of an ErrorResponse body, else a snippet of the body."""
    try:
        error = ErrorResponse.model_validate_json(response.content)
    except ValidationError:
        return _snippet(response)
    field = f" (field {error.field})" if error.field else ""
    return f"{error.error}{field}: {error.detail or ''}".rstrip(": ")


def _snippet(response: httpx.Response) -> str:
    text = response.content[:200].decode("utf-8", errors="replace")
    return repr(text) if text else "(empty body)"
