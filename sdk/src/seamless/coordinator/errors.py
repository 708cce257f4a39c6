"""Every error answer of the service, in one place, all of them JSON.

Malformed input answers 422 with `ErrorResponse` naming the field (400 for bad headers, 413
for a body over the cap), a missing or unknown bearer token 401, an unknown route 404 (its
body carries a null `completion_ratio`, like every 404/409, for QMTL's client), rate
limiting 429 with Retry-After, a lease conflict 409 `ConflictResponse`, another client's
lease or a missing role 403 `ForbiddenResponse`, and Redis being unreachable or refusing a
script 503. Nothing here touches Redis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from seamless.coordination.protocol import (
    ConflictResponse,
    ErrorResponse,
    ForbiddenResponse,
    NotFoundResponse,
)
from seamless.coordinator.store import Forbidden, RateLimited, Refused, Stale

if TYPE_CHECKING:  # guard.py imports this module
    from seamless.coordinator.guard import Caller

JSON = "application/json"


def error(
    status: int,
    kind: str,
    *,
    field: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = ErrorResponse(error=kind, field=field, detail=detail)
    return Response(body.model_dump_json(), status, headers, media_type=JSON)


def rate_limited(result: RateLimited) -> Response:
    seconds = max(1, math.ceil(result.retry_after_ms / 1000))
    return error(
        429,
        "rate_limited",
        detail=f"too many requests from this worker; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def conflict(result: Refused | Stale) -> Response:
    """409 with the key's real `completion_ratio` (null for a key never claimed): QMTL's
    client reads it with a default of 1.0 after a refused complete, so leaving it out would
    make a key another worker still holds look finished."""
    job = result.job if isinstance(result, Refused) else None
    body = ConflictResponse(
        reason=result.reason if isinstance(result, Refused) else "stale",
        lease_until_ms=result.lease_until_ms if isinstance(result, Refused) else None,
        detail=result.detail,
        completion_ratio=result.completion_ratio,
        job_id=job.job_id if job is not None else None,
    )
    exclude = {"job_id"} if body.job_id is None else set()
    return Response(body.model_dump_json(exclude=exclude), 409, media_type=JSON)


def not_owner(operation: str, key: str, result: Forbidden) -> Response:
    """403 for the right token from another client. Names neither the owner's token nor its
    client: the caller learns only that the lease is not its own."""
    body = ForbiddenResponse(
        error="not_owner",
        field="token",
        detail=f"the lease on {key!r} was claimed by another client; only the client that "
        f"claimed a lease may {operation} it",
        completion_ratio=result.completion_ratio,
    )
    return Response(body.model_dump_json(), 403, media_type=JSON)


def role_required(role: str, what: str, caller: Caller, field: str | None = None) -> Response:
    """403 for a client without the role `what` needs."""
    has = ", ".join(sorted(caller.roles)) or "no role"
    body = ForbiddenResponse(
        error="forbidden",
        field=field,
        detail=f"{what} needs the {role!r} role; client {caller.client!r} has {has} "
        "(roles are set in the coordinator's COORDINATOR_TOKENS / COORDINATOR_TOKENS_FILE)",
    )
    return Response(body.model_dump_json(exclude={"completion_ratio"}), 403, media_type=JSON)


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
    return error(422, "invalid_request", field=field, detail=detail[:2000])


def store_failed(exc: Exception, log: Any) -> Response:
    """503 for Redis errors and timeouts: the lease store gave no usable answer."""
    if isinstance(exc, ResponseError) and "changed nothing" in str(exc):
        # A key of the wrong type under our prefix (written by something else): the
        # script refused before its first write.
        log.error("redis.inconsistent", error=str(exc)[:300])
        return error(503, "unavailable", detail=f"lease store refused the change: {str(exc)[:300]}")
    log.warning("redis.unavailable", error=type(exc).__name__)
    return error(503, "unavailable", detail=f"lease store unavailable ({type(exc).__name__})")


def http_error(method: str, path: str, exc: HTTPException, inspect_prefix: str) -> Response:
    """Starlette's own refusals (no route, unparsable body, wrong method) in our shapes."""
    if exc.status_code == 404 and path.startswith(inspect_prefix):
        # The only paths under the inspect route no route matches hold a line break.
        return error(422, "invalid_request", field="key", detail="a key has no control characters")
    if exc.status_code == 404:
        body = NotFoundResponse(error="not_found", detail=f"no route {method} {path}")
        return Response(body.model_dump_json(), 404, media_type=JSON)
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (e.g. bytes that are not UTF-8 JSON).
        return error(422, "invalid_request", field="body", detail=str(exc.detail))
    if exc.status_code == 405:
        return error(
            405, "method_not_allowed", detail=f"{method} not allowed here",
            headers=dict(exc.headers or {}),
        )  # fmt: skip
    return error(exc.status_code, "http_error", detail=str(exc.detail))


# --- the guard's refusals (guard.py), before any route runs ---------------------------------


def unauthorized() -> Response:
    return error(
        401,
        "unauthorized",
        field="Authorization",
        detail="send 'Authorization: Bearer <client token>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def too_large(max_body_bytes: int) -> Response:
    return error(
        413, "too_large", field="body", detail=f"the body is over the {max_body_bytes} byte limit"
    )


def bad_headers() -> Response:
    return error(
        400,
        "invalid_request",
        field="headers",
        detail="X-Worker-Id must be printable and at most 128 characters, Content-Length a number",
    )
