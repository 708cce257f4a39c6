"""The coordinator's wire protocol: request and response bodies shared by the service and
its clients.

QMTL's client sends ``{key, lease_ms}`` to claim and echoes the token back as a *string*
(``str(token)``), so tokens are integers on the wire that also accept numeric strings.
Extra fields are allowed on requests so newer clients can talk to older services.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seamless.errors import InvalidRequestError

# Bounds shared by the service's validation and the clients' own checks.
MAX_KEY_LENGTH = 512
MIN_LEASE_MS = 100
MAX_LEASE_MS = 24 * 3600 * 1000
# Keys are printable: no ASCII control characters (they break logs, metrics and Redis tools).
KEY_PATTERN = r"^[^\x00-\x1f\x7f]+$"
# A claim's request id names one claim across its retries (the SDK sends uuid4 hex). It is
# stored on the lease and written to logs, so it is short and of a plain charset.
MAX_REQUEST_ID_LENGTH = 64
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
# Idle keep-alive: a client must drop an idle connection well before the service closes it,
# or a request sent as the service closes it dies with a ReadError and a complete whose
# outcome is unknown. httpx (ours and QMTL's) keeps idle connections 5 s, which is exactly
# uvicorn's default, so the service keeps them far longer and our client shorter.
SERVICE_KEEP_ALIVE_SECONDS = 75
CLIENT_KEEP_ALIVE_SECONDS = 15

LeaseState = Literal["free", "held", "completed", "failed"]
ConflictReason = Literal["held", "completed", "stale", "failed"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


_Request = TypeVar("_Request", bound=BaseModel)


def validate_request(model: type[_Request], **fields: Any) -> _Request:
    """`fields` as a `model` request, validated as the service validates it; a bad argument
    raises `InvalidRequestError` naming the field (the clients check before sending, the
    in-memory coordinator before its store sees anything)."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error.get("loc", ())) or "request"
        raise InvalidRequestError(name, error.get("input"), str(error["msg"])) from None


class ClaimRequest(_Body):
    key: str = Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)
    lease_ms: int = Field(ge=MIN_LEASE_MS, le=MAX_LEASE_MS)
    # Aligned-shard jobs: the claim names its job and how many shards the job has, so the
    # service can report the job's completion ratio.
    job_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN
    )
    shards_total: int | None = Field(default=None, ge=1)
    # Worker identity inside the authenticated client (QMTL: seamless_worker_id / env).
    holder: str | None = Field(default=None, min_length=1, max_length=256, pattern=KEY_PATTERN)
    # Idempotent retries: a claim whose reply was lost, sent again by the same client and
    # holder with the same request id while its lease is live, gets that same lease back
    # (same token, same lease end) instead of 409 held.
    request_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_REQUEST_ID_LENGTH, pattern=REQUEST_ID_PATTERN
    )


class RenewRequest(_Body):
    key: str = Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)
    token: int = Field(ge=1)
    lease_ms: int = Field(ge=MIN_LEASE_MS, le=MAX_LEASE_MS)


class CompleteRequest(_Body):
    key: str = Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)
    token: int = Field(ge=1)


class FailRequest(_Body):
    key: str = Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)
    token: int = Field(ge=1)
    reason: str = Field(default="", max_length=2048)


class Lease(BaseModel):
    key: str
    token: int
    lease_until_ms: int
    holder: str | None = None


class ClaimResponse(BaseModel):
    """200 on claim."""

    lease: Lease
    completion_ratio: float | None = None
    job_id: str | None = None


class RenewResponse(BaseModel):
    lease: Lease


class RatioResponse(BaseModel):
    """200 on complete and fail."""

    completion_ratio: float
    job_id: str | None = None
    # fail only: whether the key was parked as failed after too many attempts.
    parked: bool = False
    attempts: int | None = None


class ConflictResponse(BaseModel):
    """409 on claim (held/completed/failed) and on renew/complete/fail (stale)."""

    reason: ConflictReason
    lease_until_ms: int | None = None
    detail: str | None = None
    # On a claim refused as `completed` that named a job: the job's ratio, this shard counted.
    completion_ratio: float | None = None
    job_id: str | None = None


class LeaseInfo(BaseModel):
    """GET /v1/leases/{key}."""

    key: str
    state: LeaseState
    holder: str | None = None
    # The client (bearer token identity) that claimed the lease: it alone may renew,
    # complete or fail it, and it alone is shown the token of a live lease (null to others).
    client: str | None = None
    token: int | None = None
    lease_until_ms: int | None = None
    attempts: int = 0
    job_id: str | None = None
    last_reason: str | None = None


class ErrorResponse(BaseModel):
    """4xx for malformed requests: names the offending field."""

    error: str
    field: str | None = None
    detail: str | None = None


class NotFoundResponse(ErrorResponse):
    """404: no such route. Carries `completion_ratio` (always null) like every 404/409, so
    QMTL's client, which reads it with a default, never invents a ratio."""

    completion_ratio: float | None = None


class ForbiddenResponse(ErrorResponse):
    """403: the caller may not do this. `not_owner` on renew/complete/fail with the token of
    a lease another client claimed (with the key's real `completion_ratio`, as on 409, for
    QMTL's client); `forbidden` when the client lacks the role a request needs."""

    completion_ratio: float | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    reason: str | None = None


# --- operator routes (added with the coordinator service) ----------------------------------


class LeaseListResponse(BaseModel):
    """GET /v1/leases?state=failed|expired: parked keys, or expired keys not re-claimed."""

    state: Literal["failed", "expired"]
    leases: list[LeaseInfo]


class RecoverRequest(_Body):
    """POST /v1/leases/recover: make a parked or expired key claimable again with a fresh
    attempt budget; a live lease or a completed key only with ``force``."""

    key: str = Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)
    force: bool = Field(default=False, strict=True)


class RecoverResponse(BaseModel):
    key: str
    previous_state: str
    lease: LeaseInfo
