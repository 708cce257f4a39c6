"""The coordinator's HTTP API (FastAPI): QMTL's lease routes plus renew, inspect, listing and
recovery, health and readiness.

Handlers translate between the wire models of `seamless.protocol` and `LeaseStore`
outcomes and do nothing else that changes state: each state change is one Lua script in
Redis, so any number of replicas can serve one Redis. Responses are serialised once with
pydantic and returned as raw JSON (no second pass through FastAPI's encoder).

Errors always have the `ErrorResponse` shape: a malformed body, query or path answers 422
naming the field, an unknown route 404, and nothing reaches Redis before the input is valid,
so a bad request never changes a lease. Redis being unreachable answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from seamless.coordinator.fastpath import FastLeaseRoutes, FastRoute
from seamless.coordinator.guard import PUBLIC_PATHS, GuardMiddleware
from seamless.coordinator.ledger import LedgerRow, LedgerWriter
from seamless.coordinator.logs import get_logger
from seamless.coordinator.metrics import CoordinatorMetrics, key_labels
from seamless.coordinator.settings import CoordinatorSettings
from seamless.coordinator.store import (
    ExpiredLease,
    Finished,
    Granted,
    LeaseStore,
    RateLimited,
    Recovered,
    Refused,
    Renewed,
    Stale,
)
from seamless.protocol import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    ConflictResponse,
    ErrorResponse,
    FailRequest,
    HealthResponse,
    Lease,
    LeaseInfo,
    LeaseListResponse,
    NotFoundResponse,
    RatioResponse,
    RecoverRequest,
    RecoverResponse,
    RenewRequest,
    RenewResponse,
)

_JSON = "application/json"
_HEALTH_TIMEOUT_S = 1.0

_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing or invalid bearer token"},
    422: {"model": ErrorResponse, "description": "malformed request; `field` names it"},
    429: {"model": ErrorResponse, "description": "rate limited; see Retry-After"},
    503: {"model": ErrorResponse, "description": "Redis unreachable"},
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ConflictResponse, "description": "held, completed, failed or stale"},
}


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(), status, headers, media_type=_JSON)


def _error(
    status: int,
    error: str,
    *,
    field: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return _json(ErrorResponse(error=error, field=field, detail=detail), status, headers)


def _rate_limited(result: RateLimited) -> Response:
    seconds = max(1, math.ceil(result.retry_after_ms / 1000))
    return _error(
        429,
        "rate_limited",
        detail=f"too many requests from this worker; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def _conflict(result: Refused | Stale, reason: Any = None) -> Response:
    """409 with the key's real `completion_ratio` (null for a key never claimed): QMTL's
    client reads it with a default of 1.0 after a refused complete, so leaving it out would
    make a key another worker still holds look finished."""
    job = result.job if isinstance(result, Refused) else None
    body = ConflictResponse(
        reason=reason or (result.reason if isinstance(result, Refused) else "stale"),
        lease_until_ms=result.lease_until_ms if isinstance(result, Refused) else None,
        detail=result.detail,
        completion_ratio=result.completion_ratio,
        job_id=job.job_id if job is not None else None,
    )
    exclude = {"job_id"} if body.job_id is None else set()
    return Response(body.model_dump_json(exclude=exclude), 409, media_type=_JSON)


def _field_of(loc: tuple[Any, ...], error_type: str = "") -> str:
    if error_type == "json_invalid":  # loc is ("body", <offset>)
        return "body"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) if parts else (str(loc[0]) if loc else "body")


def invalid_input(errors: Sequence[Any]) -> Response:
    """422 naming the first offending field, with every problem in `detail`."""
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    field = _field_of(tuple(first.get("loc", ("body",))), str(first.get("type", "")))
    detail = "; ".join(
        f"{_field_of(tuple(e.get('loc', ())), str(e.get('type', '')))}: {e.get('msg')}"
        for e in errors
    )
    return _error(422, "invalid_request", field=field, detail=detail[:2000])


class Service:
    """What the handlers share; filled in by the app's lifespan."""

    def __init__(self, settings: CoordinatorSettings, metrics: CoordinatorMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.log = get_logger()
        self.redis: Redis | None = None
        self._store: LeaseStore | None = None
        self.ledger: LedgerWriter | None = None
        self.ready = False

    @property
    def store(self) -> LeaseStore:
        if self._store is None:
            raise RedisError("the service is starting")
        return self._store

    def open(self, redis: Redis | None = None) -> None:
        s = self.settings
        self.redis = redis or Redis.from_url(
            s.redis_dsn,
            decode_responses=True,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            # A retried script could apply twice (e.g. a claim whose reply was lost), so the
            # client never retries on its own; the caller sees 503 and decides.
            retry=Retry(NoBackoff(), 0),
            max_connections=1024,
            # redis-py 8 turns "maintenance notifications" on ("auto") for RESP3, and while
            # they are on the pool skips its check for connections the server closed: after a
            # Redis restart every pooled connection was handed out dead (503 until each had
            # failed once). Off, a closed connection is replaced when it is taken from the
            # pool, so the first request after a restart succeeds; keepalive finds peers
            # that vanished without closing.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
            socket_keepalive=True,
        )
        self._store = LeaseStore(
            self.redis,
            prefix=s.key_prefix,
            max_attempts=s.max_attempts,
            rate_limit=s.rate_limit,
            completed_retention_ms=s.completed_retention_s * 1000,
        )
        if s.questdb_dsn:
            self.ledger = LedgerWriter(
                s.questdb_dsn,
                s.ledger_table,
                capacity=s.ledger_buffer,
                metrics=self.metrics,
                log=self.log,
            )
            self.ledger.start()

    async def close(self) -> None:
        self.ready = False
        if self.ledger is not None:
            await self.ledger.stop()
        if self.redis is not None:
            await self.redis.aclose()

    def store_error(self, exc: Exception) -> Response:
        if isinstance(exc, ResponseError) and "changed nothing" in str(exc):
            # A key of the wrong type under our prefix (written by something else): the
            # script refused before its first write.
            self.log.error("redis.inconsistent", error=str(exc)[:300])
            return _error(
                503, "unavailable", detail=f"lease store refused the change: {str(exc)[:300]}"
            )
        self.log.warning("redis.unavailable", error=type(exc).__name__)
        return _error(503, "unavailable", detail=f"lease store unavailable ({type(exc).__name__})")

    # --- what every state change reports ----------------------------------------------------

    def expired(self, lost: ExpiredLease) -> None:
        node_id, interval = key_labels(lost.key)
        self.metrics.expiries.labels(node_id, interval).inc()
        self.log.info(
            "lease.expired",
            lease_key=lost.key,
            holder=lost.holder,
            token=lost.token,
            lease_until_ms=lost.lease_until_ms,
        )

    def ledger_row(
        self,
        event: str,
        key: str,
        finished: Finished | None,
        ratio: float,
        reason: str | None = None,
        lost: ExpiredLease | None = None,
        attempts: int | None = None,
    ) -> None:
        if self.ledger is None:
            return
        node_id, interval = key_labels(key)
        self.ledger.record(
            LedgerRow(
                ts=datetime.now(UTC),
                event=event,
                lease_key=key,
                node_id=node_id,
                bar_interval=interval,
                token=finished.token if finished else (lost.token if lost else 0),
                holder=finished.holder if finished else (lost.holder if lost else ""),
                client=finished.client if finished else "",
                coordinator_id=self.settings.coordinator_id,
                attempts=finished.attempts if finished else (attempts or 0),
                job_id=finished.job.job_id if finished else None,
                completion_ratio=ratio,
                reason=reason,
            )
        )

    async def sweep_forever(self) -> None:
        interval = self.settings.sweep_interval_ms / 1000
        while True:
            try:
                for lost in await self.store.sweep():
                    self.expired(lost)
            except (RedisError, OSError, TimeoutError) as exc:
                self.log.warning("sweep.failed", error=type(exc).__name__)
            await asyncio.sleep(interval)


def _identity(request: Request) -> tuple[str, str]:
    """(client id from the bearer token, worker id from X-Worker-Id or '')."""
    state = request.scope.get("state", {})
    return state.get("client_id", ""), state.get("worker_id", "")


def create_app(
    settings: CoordinatorSettings,
    *,
    metrics: CoordinatorMetrics | None = None,
    redis: Redis | None = None,
) -> FastAPI:
    """Build the app. `redis` overrides the client built from the settings (tests)."""
    metrics = metrics or CoordinatorMetrics()
    svc = Service(settings, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        svc.open(redis)
        metrics_server = None
        if settings.prometheus_port:
            metrics_server, _thread = start_http_server(
                settings.prometheus_port, addr=settings.host, registry=metrics.registry
            )
        sweeper = asyncio.create_task(svc.sweep_forever(), name="lease-sweeper")
        svc.ready = True
        svc.log.info(
            "coordinator.started",
            bind=f"{settings.host}:{settings.port}",
            metrics_port=settings.prometheus_port,
            key_prefix=settings.key_prefix,
            max_attempts=settings.max_attempts,
            rate_limit=settings.rate_limit,
            ledger_table=settings.ledger_table if settings.questdb_dsn else None,
            clients=sorted(settings.tokens),
        )
        try:
            yield
        finally:
            svc.ready = False
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await svc.close()
            if metrics_server is not None:
                metrics_server.shutdown()
            svc.log.info("coordinator.stopped")

    app = FastAPI(
        title="seamless-coordinator",
        version="1.0",
        description="Distributed backfill leases with fencing tokens, wire-compatible with "
        "QMTL's DistributedBackfillCoordinator client.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc

    # --- errors: always the ErrorResponse shape, never a stack trace ------------------------

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        return invalid_input(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and request.url.path.startswith("/v1/leases/"):
            # The only paths under /v1/leases/ no route matches hold a line break in the key.
            return _error(
                422, "invalid_request", field="key", detail="a key has no control characters"
            )
        if exc.status_code == 404:
            body = NotFoundResponse(
                error="not_found", detail=f"no route {request.method} {request.url.path}"
            )
            return _json(body, 404)
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (e.g. bytes that are not UTF-8 JSON).
            return _error(422, "invalid_request", field="body", detail=str(exc.detail))
        if exc.status_code == 405:
            return _error(
                405, "method_not_allowed", detail=f"{request.method} not allowed here",
                headers=dict(exc.headers or {}),
            )  # fmt: skip
        return _error(exc.status_code, "http_error", detail=str(exc.detail))

    @app.exception_handler(RedisError)
    async def redis_down(_: Request, exc: RedisError) -> Response:
        return svc.store_error(exc)

    @app.exception_handler(TimeoutError)
    async def redis_timeout(_: Request, exc: TimeoutError) -> Response:
        return svc.store_error(exc)

    # --- QMTL's routes ---------------------------------------------------------------------

    @app.post(
        "/v1/leases/claim",
        response_model=ClaimResponse,
        responses={**_CONFLICT, **_COMMON_ERRORS},
        summary="Claim a key; 409 when held, completed or parked",
    )
    async def claim(body: ClaimRequest, request: Request) -> Response:
        return await claim_lease(body, *_identity(request))

    async def claim_lease(body: ClaimRequest, client: str, worker: str) -> Response:
        result = await svc.store.claim(
            body.key,
            body.lease_ms,
            holder=body.holder or worker or client,
            client=client,
            job_id=body.job_id,
            shards_total=body.shards_total,
            identity=f"{client}:{worker}",
            request_id=body.request_id,
        )
        if isinstance(result, Granted):
            ratio = result.job.ratio(0.0)
            if result.replayed:
                metrics.replays.labels("claim").inc()
                svc.log.info(
                    "lease.claim_replayed",
                    lease_key=body.key,
                    token=result.token,
                    request_id=body.request_id,
                )
            else:
                if result.lost is not None and result.newly_expired:
                    svc.expired(result.lost)
                metrics.claims.labels("granted").inc()
                if result.job.job_id:
                    metrics.set_completion_ratio(body.key, ratio)
                svc.log.debug(
                    "lease.claimed",
                    lease_key=body.key,
                    token=result.token,
                    holder=result.holder,
                    attempts=result.attempts,
                )
            lease = Lease(
                key=body.key,
                token=result.token,
                lease_until_ms=result.lease_until_ms,
                holder=result.holder,
            )
            return _json(
                ClaimResponse(lease=lease, completion_ratio=ratio, job_id=result.job.job_id)
            )
        if isinstance(result, RateLimited):
            metrics.rate_limited.inc()
            return _rate_limited(result)
        metrics.claims.labels(result.reason).inc()
        if result.parked_now:
            if result.lost is not None and result.newly_expired:
                svc.expired(result.lost)
            metrics.parked.labels(*key_labels(body.key)).inc()
            svc.log.warning("lease.parked", lease_key=body.key, reason=result.detail)
            svc.ledger_row(
                "parked", body.key, None, 0.0, result.detail, result.lost, result.attempts
            )
        if result.job is not None and result.job.job_id:
            metrics.set_completion_ratio(body.key, result.job.ratio(0.0))
        return _conflict(result)

    def _finished_or_conflict(
        result: Finished | Stale | RateLimited, operation: str, key: str
    ) -> Finished | Response:
        if isinstance(result, Finished):
            return result
        if isinstance(result, RateLimited):
            metrics.rate_limited.inc()
            return _rate_limited(result)
        metrics.stale.labels(operation).inc()
        if result.lost is not None:
            svc.expired(result.lost)
        svc.log.info("lease.stale", operation=operation, lease_key=key, detail=result.detail)
        return _conflict(result)

    @app.post(
        "/v1/leases/complete",
        response_model=RatioResponse,
        responses={**_CONFLICT, **_COMMON_ERRORS},
        summary="Complete the live lease; 409 stale for any other token",
    )
    async def complete(body: CompleteRequest, request: Request) -> Response:
        return await complete_lease(body, *_identity(request))

    async def complete_lease(body: CompleteRequest, client: str, worker: str) -> Response:
        result = await svc.store.complete(
            body.key, body.token, client=client, identity=f"{client}:{worker}"
        )
        done = _finished_or_conflict(result, "complete", body.key)
        if isinstance(done, Response):
            return done
        ratio = done.job.ratio(1.0)
        metrics.set_completion_ratio(body.key, ratio)
        if done.replayed:
            metrics.replays.labels("complete").inc()
            svc.log.info("lease.complete_replayed", lease_key=body.key, token=done.token)
        else:
            metrics.completed.labels(*key_labels(body.key)).inc()
            svc.ledger_row("completed", body.key, done, ratio)
            svc.log.debug(
                "lease.completed", lease_key=body.key, token=done.token, holder=done.holder
            )
        return _json(
            RatioResponse(completion_ratio=ratio, job_id=done.job.job_id, attempts=done.attempts)
        )

    @app.post(
        "/v1/leases/fail",
        response_model=RatioResponse,
        responses={**_CONFLICT, **_COMMON_ERRORS},
        summary="Give the lease back with a reason; parked after too many attempts",
    )
    async def fail(body: FailRequest, request: Request) -> Response:
        return await fail_lease(body, *_identity(request))

    async def fail_lease(body: FailRequest, client: str, worker: str) -> Response:
        result = await svc.store.fail(
            body.key, body.token, body.reason, client=client, identity=f"{client}:{worker}"
        )
        done = _finished_or_conflict(result, "fail", body.key)
        if isinstance(done, Response):
            return done
        ratio = done.job.ratio(0.0)
        labels = key_labels(body.key)
        metrics.set_completion_ratio(body.key, ratio)
        if done.replayed:
            metrics.replays.labels("fail").inc()
            svc.log.info("lease.fail_replayed", lease_key=body.key, token=done.token)
        elif done.parked:
            metrics.failed.labels(*labels).inc()
            metrics.parked.labels(*labels).inc()
            svc.log.warning(
                "lease.parked", lease_key=body.key, attempts=done.attempts, reason=body.reason
            )
        else:
            metrics.failed.labels(*labels).inc()
            svc.log.info(
                "lease.failed", lease_key=body.key, attempts=done.attempts, reason=body.reason
            )
        if not done.replayed:
            svc.ledger_row(
                "parked" if done.parked else "failed", body.key, done, ratio, body.reason
            )
        return _json(
            RatioResponse(
                completion_ratio=ratio,
                job_id=done.job.job_id,
                parked=done.parked,
                attempts=done.attempts,
            )
        )

    # --- beyond QMTL: renew, inspect, listing, recovery ------------------------------------

    @app.post(
        "/v1/leases/renew",
        response_model=RenewResponse,
        responses={**_CONFLICT, **_COMMON_ERRORS},
        summary="Extend the live lease (heartbeat at TTL/3); 409 stale otherwise",
    )
    async def renew(body: RenewRequest, request: Request) -> Response:
        return await renew_lease(body, *_identity(request))

    async def renew_lease(body: RenewRequest, client: str, worker: str) -> Response:
        result = await svc.store.renew(
            body.key, body.token, body.lease_ms, identity=f"{client}:{worker}"
        )
        if isinstance(result, Renewed):
            lease = Lease(
                key=body.key,
                token=result.token,
                lease_until_ms=result.lease_until_ms,
                holder=result.holder or None,
            )
            return _json(RenewResponse(lease=lease))
        if isinstance(result, RateLimited):
            metrics.rate_limited.inc()
            return _rate_limited(result)
        metrics.stale.labels("renew").inc()
        if result.lost is not None:
            svc.expired(result.lost)
        return _conflict(result)

    @app.get(
        "/v1/leases",
        response_model=LeaseListResponse,
        responses=_COMMON_ERRORS,
        summary="Operator listing: parked (failed) keys, or expired keys not re-claimed",
    )
    async def list_leases(
        request: Request,
        state: Annotated[Literal["failed", "expired"], Query()] = "failed",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        client, worker = _identity(request)
        limited = await svc.store.check_rate(f"{client}:{worker}")
        if limited is not None:
            metrics.rate_limited.inc()
            return _rate_limited(limited)
        leases = await svc.store.list_keys(state, limit)
        return _json(LeaseListResponse(state=state, leases=leases))

    @app.post(
        "/v1/leases/recover",
        response_model=RecoverResponse,
        responses={**_CONFLICT, **_COMMON_ERRORS},
        summary="Make a parked or expired key claimable again (force for live/completed)",
    )
    async def recover(body: RecoverRequest, request: Request) -> Response:
        client, worker = _identity(request)
        result = await svc.store.recover(body.key, force=body.force, identity=f"{client}:{worker}")
        if isinstance(result, RateLimited):
            metrics.rate_limited.inc()
            return _rate_limited(result)
        if isinstance(result, Refused):
            return _conflict(result)
        assert isinstance(result, Recovered)
        svc.log.info(
            "lease.recovered",
            lease_key=body.key,
            previous_state=result.previous_state,
            force=body.force,
            operator=client,
        )
        info = await svc.store.inspect(body.key)
        return _json(
            RecoverResponse(key=body.key, previous_state=result.previous_state, lease=info)
        )

    @app.get(
        "/v1/leases/{key:path}",
        response_model=LeaseInfo,
        responses=_COMMON_ERRORS,
        summary="Inspect a key: state, holder, token, lease end, attempts",
    )
    async def inspect(
        request: Request,
        key: Annotated[str, Path(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)],
    ) -> Response:
        client, worker = _identity(request)
        limited = await svc.store.check_rate(f"{client}:{worker}")
        if limited is not None:
            metrics.rate_limited.inc()
            return _rate_limited(limited)
        return _json(await svc.store.inspect(key))

    # --- probes and metrics (public) --------------------------------------------------------

    async def _redis_answers() -> str | None:
        """None when Redis answers PING in time, else the reason it does not."""
        try:
            await asyncio.wait_for(svc.store.ping(), _HEALTH_TIMEOUT_S)
        except TimeoutError:
            return "redis: no answer within 1 s"
        except (RedisError, OSError) as exc:
            return f"redis: {type(exc).__name__}"
        return None

    # `/health` is what QMTL's own operator tool (scripts/seamless_health_check.py) probes.
    @app.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    @app.get("/healthz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def healthz() -> Response:
        reason = await _redis_answers()
        if reason is None:
            return _json(HealthResponse(status="ok"))
        return _json(HealthResponse(status="unavailable", reason=reason), 503)

    @app.get("/readyz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def readyz() -> Response:
        reason = "starting or shutting down" if not svc.ready else await _redis_answers()
        if reason is None:
            return _json(HealthResponse(status="ok"))
        return _json(HealthResponse(status="unavailable", reason=reason), 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _publish_security(app)
    # The four lease routes QMTL's workers call in their hot loop also get a direct ASGI
    # path that skips FastAPI's routing and dependency machinery; the FastAPI routes above
    # stay for the OpenAPI document and run the very same functions.
    fast_routes: dict[str, FastRoute] = {
        "/v1/leases/claim": (ClaimRequest, claim_lease),
        "/v1/leases/complete": (CompleteRequest, complete_lease),
        "/v1/leases/fail": (FailRequest, fail_lease),
        "/v1/leases/renew": (RenewRequest, renew_lease),
    }
    app.add_middleware(
        FastLeaseRoutes,
        routes=fast_routes,
        on_invalid=invalid_input,
        on_store_error=svc.store_error,
    )
    app.add_middleware(GuardMiddleware, tokens=settings.tokens, metrics=metrics)
    return app


def _publish_security(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI document on every non-public route."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer"}
        }
        for path, operations in schema.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def now_ms() -> int:
    return int(time.time() * 1000)
