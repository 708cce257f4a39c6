"""The coordinator's HTTP API (FastAPI): QMTL's lease routes plus renew, inspect, listing and
recovery, health and readiness.

Handlers translate between the wire models of `seamless.coordination.protocol` and `LeaseStore`
outcomes and do nothing else: each state change is one Lua script in Redis, so any number
of replicas can serve one Redis; what a change reports (metrics, logs, ledger rows) is
`events.py`'s; every error answer is `errors.py`'s; every route is declared in
`routes.py`. Responses are serialised once with pydantic and returned as raw JSON (no
second pass through FastAPI's encoder).

Ownership and roles: a lease belongs to the client that claimed it. Renew, complete and
fail with its token from another client answer 403 `not_owner` (store.py); inspect, list
and recover show a live lease's token to that client only (null to others). Claiming needs
the `worker` role, a forced recovery the `operator` role (403 `forbidden` naming the role,
before Redis is asked); reading and unforced recovery need only a valid token.

A malformed body, query or path answers 422 naming the field, and nothing reaches Redis
before the input is valid, so a bad request never changes a lease. Redis being unreachable
answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from pydantic import BaseModel
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from seamless.coordination.protocol import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    ConflictResponse,
    ErrorResponse,
    FailRequest,
    ForbiddenResponse,
    HealthResponse,
    Lease,
    LeaseInfo,
    LeaseListResponse,
    RatioResponse,
    RecoverRequest,
    RecoverResponse,
    RenewRequest,
    RenewResponse,
)
from seamless.coordinator import errors, redis_dsn
from seamless.coordinator import routes as r
from seamless.coordinator.events import LeaseEvents
from seamless.coordinator.fastpath import NOBODY, FastLeaseRoutes, FastRoute, Handler
from seamless.coordinator.guard import Caller, GuardMiddleware
from seamless.coordinator.ledger import LedgerWriter
from seamless.coordinator.logs import get_logger
from seamless.coordinator.metrics import CoordinatorMetrics
from seamless.coordinator.pipelined import PipelinedConnection
from seamless.coordinator.settings import OPERATOR, WORKER, CoordinatorSettings
from seamless.coordinator.store import (
    Finished,
    Forbidden,
    LeaseStore,
    RateLimited,
    Recovered,
    Refused,
    Stale,
)

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
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ForbiddenResponse,
        "description": "not_owner: another client's lease; forbidden: a role is missing",
    },
}
_HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {503: {"model": HealthResponse}}


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status, media_type=errors.JSON)


class Service:
    """What the handlers share; filled in by the app's lifespan."""

    def __init__(self, settings: CoordinatorSettings, metrics: CoordinatorMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.log = get_logger()
        self.events = LeaseEvents(metrics, self.log, settings.coordinator_id)
        self.redis: Redis | RedisCluster | None = None
        self.pipelined: PipelinedConnection | None = None
        self._store: LeaseStore | None = None
        self.ledger: LedgerWriter | None = None
        self.ready = False
        self._stop_sweeping = asyncio.Event()

    @property
    def store(self) -> LeaseStore:
        if self._store is None:
            raise RedisError("the service is starting")
        return self._store

    def open(self, redis: Redis | RedisCluster | None = None) -> None:
        s = self.settings
        target = redis_dsn.parse(s.redis_dsn)
        self.redis = redis or redis_dsn.connect(
            target,
            decode_responses=True,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            # A script retried by redis-py after a lost reply would run twice; the service
            # never retries on its own, the caller sees 503 and retries the request, which
            # the lease scripts answer idempotently (see store.py).
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
        if redis is None and target.topology == "single" and s.redis_min_replicas <= 0:
            # One Redis: the lease scripts of concurrent requests share one connection,
            # pipelined (pipelined.py); a cluster routes by slot, Sentinel and WAIT stay
            # on the client.
            assert isinstance(self.redis, Redis)
            self.pipelined = PipelinedConnection(self.redis.connection_pool)
        self._store = LeaseStore(
            self.redis,
            prefix=s.key_prefix,
            max_attempts=s.max_attempts,
            rate_limit=s.rate_limit,
            completed_retention_ms=s.completed_retention_s * 1000,
            partitions=s.redis_partitions,
            min_replicas=s.redis_min_replicas,
            replica_timeout_ms=s.redis_replica_timeout_ms,
            pipelined=self.pipelined,
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
        self.events.ledger = self.ledger

    async def close(self) -> None:
        self.ready = False
        if self.ledger is not None:
            await self.ledger.stop()
        if self.pipelined is not None:
            await self.pipelined.aclose()
        if self.redis is not None:
            await self.redis.aclose()

    def store_error(self, exc: Exception) -> Response:
        return errors.store_failed(exc, self.log)

    async def sweep_forever(self) -> None:
        """Sweep every interval until `stop_sweeping`.

        The loop ends on the stop flag, not only on its cancellation: redis-py sends each
        command under `asyncio.wait_for`, which on Python 3.11 drops a cancel that arrives
        as the send completes (gh-86296), so a sweeper cancelled mid-sweep could carry on
        sweeping and keep the shutdown waiting for ever.
        """
        interval = self.settings.sweep_interval_ms / 1000
        while not self._stop_sweeping.is_set():
            try:
                for lost in await self.store.sweep():
                    self.events.expired(lost)
            except (RedisError, OSError, TimeoutError) as exc:
                self.log.warning("sweep.failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._stop_sweeping.wait()

    async def stop_sweeping(self, sweeper: asyncio.Task[None]) -> None:
        self._stop_sweeping.set()
        sweeper.cancel()  # ends a sweep in flight, when the cancel is not lost (see above)
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


def _caller(request: Request) -> Caller:
    """Who sent the request (set by the guard)."""
    caller: Caller = request.scope.get("state", {}).get("caller", NOBODY)
    return caller


def _shown_to(info: LeaseInfo, caller: Caller) -> LeaseInfo:
    """`info` as `caller` may see it: a live lease's token only for the client holding it.
    (A token that is no longer live gives no power, so it stays visible to operators.)"""
    if info.state == "held" and info.token is not None and info.client != caller.client:
        return info.model_copy(update={"token": None})
    return info


class CoordinatorApp(FastAPI):
    """FastAPI with the guard and the hot routes' fast path (`front`) in front of FastAPI's
    own middleware (server errors, telemetry, its body limit): every request passes the
    guard first, and a hot lease route is answered without entering FastAPI at all. An
    error escaping a hot handler reaches uvicorn, which answers 500 and logs it, as
    FastAPI's server-error layer did."""

    front: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return self.front(stack) if self.front is not None else stack


def _fastapi_endpoint(route: r.Route, handler: Handler) -> Callable[..., Awaitable[Response]]:
    """The FastAPI endpoint of a hot lease route: validates `route.body` as FastAPI does and
    runs the same handler the fast path runs."""

    async def endpoint(body: Any, request: Request) -> Response:
        return await handler(body, _caller(request))

    # FastAPI reads the body model, and the operation id, from these.
    endpoint.__annotations__ = {"body": route.body, "request": Request, "return": Response}
    endpoint.__name__ = route.label
    return endpoint


def create_app(
    settings: CoordinatorSettings,
    *,
    metrics: CoordinatorMetrics | None = None,
    redis: Redis | None = None,
) -> FastAPI:
    """Build the app. `redis` overrides the client built from the settings (tests)."""
    metrics = metrics or CoordinatorMetrics(max_series=settings.max_metric_series)
    svc = Service(settings, metrics)
    events = svc.events

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        svc.open(redis)
        try:
            # Ahead of the first request: a cluster client answering many concurrent
            # NOSCRIPT fallbacks at once broke connections (redis-py 8.1).
            await svc.store.load_scripts()
        except (RedisError, OSError) as exc:
            # Redis may come later; the first call of each script then loads it.
            svc.log.warning("scripts.not_loaded", error=type(exc).__name__)
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
            await svc.stop_sweeping(sweeper)
            await svc.close()
            if metrics_server is not None:
                metrics_server.shutdown()
            svc.log.info("coordinator.stopped")

    app = CoordinatorApp(
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
        return errors.invalid_input(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return errors.http_error(request.method, request.url.path, exc, r.INSPECT.prefix or "")

    @app.exception_handler(RedisError)
    async def redis_down(_: Request, exc: RedisError) -> Response:
        return svc.store_error(exc)

    @app.exception_handler(TimeoutError)
    async def redis_timeout(_: Request, exc: TimeoutError) -> Response:
        return svc.store_error(exc)

    def refused(
        operation: str, key: str, result: Stale | Forbidden | RateLimited, caller: Caller
    ) -> Response:
        if isinstance(result, RateLimited):
            events.rate_limited()
            return errors.rate_limited(result)
        if isinstance(result, Forbidden):
            events.not_owner(operation, key, caller.client)
            return errors.not_owner(operation, key, result)
        events.stale(operation, key, result)
        return errors.conflict(result)

    # --- QMTL's routes (served by the fast path, see the end) ------------------------------

    async def claim(body: ClaimRequest, caller: Caller) -> Response:
        if WORKER not in caller.roles:
            return errors.role_required(WORKER, "claiming a lease", caller)
        result = await svc.store.claim(
            body.key,
            body.lease_ms,
            holder=body.holder or caller.worker or caller.client,
            client=caller.client,
            job_id=body.job_id,
            shards_total=body.shards_total,
            identity=caller.rate_identity,
            request_id=body.request_id,
        )
        if isinstance(result, RateLimited):
            events.rate_limited()
            return errors.rate_limited(result)
        if isinstance(result, Refused):
            events.claim_refused(body.key, result)
            return errors.conflict(result)
        events.claim_granted(body.key, result, body.request_id)
        lease = Lease(
            key=body.key,
            token=result.token,
            lease_until_ms=result.lease_until_ms,
            holder=result.holder,
        )
        ratio = result.job.ratio(0.0)
        return _json(ClaimResponse(lease=lease, completion_ratio=ratio, job_id=result.job.job_id))

    async def complete(body: CompleteRequest, caller: Caller) -> Response:
        result = await svc.store.complete(
            body.key, body.token, client=caller.client, identity=caller.rate_identity
        )
        if not isinstance(result, Finished):
            return refused("complete", body.key, result, caller)
        ratio = result.job.ratio(1.0)
        events.completed(body.key, result, ratio)
        return _json(
            RatioResponse(
                completion_ratio=ratio, job_id=result.job.job_id, attempts=result.attempts
            )
        )

    async def fail(body: FailRequest, caller: Caller) -> Response:
        result = await svc.store.fail(
            body.key,
            body.token,
            body.reason,
            client=caller.client,
            identity=caller.rate_identity,
        )
        if not isinstance(result, Finished):
            return refused("fail", body.key, result, caller)
        ratio = result.job.ratio(0.0)
        events.failed(body.key, result, ratio, body.reason)
        return _json(
            RatioResponse(
                completion_ratio=ratio,
                job_id=result.job.job_id,
                parked=result.parked,
                attempts=result.attempts,
            )
        )

    # --- beyond QMTL: renew, inspect, listing, recovery ------------------------------------

    async def renew(body: RenewRequest, caller: Caller) -> Response:
        result = await svc.store.renew(
            body.key,
            body.token,
            body.lease_ms,
            client=caller.client,
            identity=caller.rate_identity,
        )
        if isinstance(result, Stale | Forbidden | RateLimited):
            return refused("renew", body.key, result, caller)
        lease = Lease(
            key=body.key,
            token=result.token,
            lease_until_ms=result.lease_until_ms,
            holder=result.holder or None,
        )
        return _json(RenewResponse(lease=lease))

    hot_handlers: dict[r.Route, Handler] = {
        r.CLAIM: claim,
        r.COMPLETE: complete,
        r.FAIL: fail,
        r.RENEW: renew,
    }
    response_models = {
        r.CLAIM: ClaimResponse,
        r.COMPLETE: RatioResponse,
        r.FAIL: RatioResponse,
        r.RENEW: RenewResponse,
    }
    for route in r.HOT_ROUTES:
        app.add_api_route(
            route.path,
            _fastapi_endpoint(route, hot_handlers[route]),
            methods=[route.method],
            response_model=response_models[route],
            responses={**_FORBIDDEN, **_CONFLICT, **_COMMON_ERRORS},
            summary=route.summary,
        )

    async def rate_checked(request: Request) -> Response | None:
        """429 when a read request is over the worker's limit, else None."""
        limited = await svc.store.check_rate(_caller(request).rate_identity)
        if limited is None:
            return None
        events.rate_limited()
        return errors.rate_limited(limited)

    @app.get(
        r.LIST.path,
        response_model=LeaseListResponse,
        responses=_COMMON_ERRORS,
        summary=r.LIST.summary,
    )
    async def list_leases(
        request: Request,
        state: Annotated[Literal["failed", "expired"], Query()] = "failed",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        if (limited := await rate_checked(request)) is not None:
            return limited
        caller = _caller(request)
        leases = [_shown_to(info, caller) for info in await svc.store.list_keys(state, limit)]
        return _json(LeaseListResponse(state=state, leases=leases))

    @app.post(
        r.RECOVER.path,
        response_model=RecoverResponse,
        responses={**_FORBIDDEN, **_CONFLICT, **_COMMON_ERRORS},
        summary=r.RECOVER.summary,
    )
    async def recover(body: RecoverRequest, request: Request) -> Response:
        caller = _caller(request)
        # Forcing takes a live lease from its holder or reopens finished work: an operator's
        # call, refused before Redis is asked. Unforced recovery (parked, free or expired
        # keys) stays open to every client.
        if body.force and OPERATOR not in caller.roles:
            return errors.role_required(OPERATOR, "recover with force", caller, field="force")
        result = await svc.store.recover(body.key, force=body.force, identity=caller.rate_identity)
        if isinstance(result, RateLimited):
            events.rate_limited()
            return errors.rate_limited(result)
        if isinstance(result, Refused):
            return errors.conflict(result)
        assert isinstance(result, Recovered)
        events.recovered(body.key, result.previous_state, force=body.force, operator=caller.client)
        info = _shown_to(await svc.store.inspect(body.key), caller)
        return _json(
            RecoverResponse(key=body.key, previous_state=result.previous_state, lease=info)
        )

    @app.get(
        r.INSPECT.path,
        response_model=LeaseInfo,
        responses=_COMMON_ERRORS,
        summary=r.INSPECT.summary,
    )
    async def inspect(
        request: Request,
        key: Annotated[str, Path(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)],
    ) -> Response:
        if (limited := await rate_checked(request)) is not None:
            return limited
        return _json(_shown_to(await svc.store.inspect(key), _caller(request)))

    # --- probes and metrics (public) --------------------------------------------------------

    async def _redis_answers() -> str | None:
        """None when Redis answers PING in time, else the reason it does not."""
        try:
            async with asyncio.timeout(_HEALTH_TIMEOUT_S):
                await svc.store.ping()
        except TimeoutError:
            return "redis: no answer within 1 s"
        except (RedisError, OSError) as exc:
            return f"redis: {type(exc).__name__}"
        return None

    @app.get(r.HEALTH.path, response_model=HealthResponse, responses=_HEALTH_RESPONSES)
    @app.get(r.HEALTHZ.path, response_model=HealthResponse, responses=_HEALTH_RESPONSES)
    async def healthz() -> Response:
        reason = await _redis_answers()
        if reason is None:
            return _json(HealthResponse(status="ok"))
        return _json(HealthResponse(status="unavailable", reason=reason), 503)

    @app.get(r.READYZ.path, response_model=HealthResponse, responses=_HEALTH_RESPONSES)
    async def readyz() -> Response:
        reason = "starting or shutting down" if not svc.ready else await _redis_answers()
        if reason is None:
            return _json(HealthResponse(status="ok"))
        return _json(HealthResponse(status="unavailable", reason=reason), 503)

    @app.get(r.METRICS.path, include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _publish_security(app)
    # The hot lease routes also get a direct ASGI path that skips FastAPI's routing and
    # dependency machinery; the FastAPI routes above stay for the OpenAPI document and run
    # the very same handlers.
    fast_routes: dict[str, FastRoute] = {
        route.path: (route.body, hot_handlers[route])
        for route in r.HOT_ROUTES
        if route.body is not None
    }

    def front(stack: ASGIApp) -> ASGIApp:
        return GuardMiddleware(
            FastLeaseRoutes(
                stack,
                routes=fast_routes,
                on_invalid=errors.invalid_input,
                on_store_error=svc.store_error,
            ),
            tokens=settings.tokens,
            roles={client: settings.roles_of(client) for client in settings.tokens},
            metrics=metrics,
        )

    app.front = front
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
            if path in r.PUBLIC_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
