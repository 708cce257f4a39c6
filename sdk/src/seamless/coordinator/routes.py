"""Every route of the service, declared once: the FastAPI app registers them from here, the
fast path (fastpath.py) serves the ones marked `hot`, and the guard (guard.py) takes from
here which paths are public and how each is labelled in the request metrics."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from seamless.coordination.protocol import ClaimRequest, CompleteRequest, FailRequest, RenewRequest


@dataclass(frozen=True)
class Route:
    # The `route` label of the request metrics.
    label: str
    method: str
    path: str
    summary: str | None = None
    # Served without a bearer token.
    public: bool = False
    # The request body of a hot lease route: QMTL's workers call these in their loop, so
    # they also get the direct ASGI path that skips FastAPI's routing (fastpath.py).
    body: type[BaseModel] | None = None

    @property
    def prefix(self) -> str | None:
        """The fixed part of a templated path ('/v1/leases/' for '/v1/leases/{key:path}')."""
        return self.path.split("{", 1)[0] if "{" in self.path else None


CLAIM = Route(
    "claim", "POST", "/v1/leases/claim",
    "Claim a key; 409 when held, completed or parked", body=ClaimRequest,
)  # fmt: skip
COMPLETE = Route(
    "complete", "POST", "/v1/leases/complete",
    "Complete the live lease; 409 stale: other token; 403: other client", body=CompleteRequest,
)  # fmt: skip
FAIL = Route(
    "fail", "POST", "/v1/leases/fail",
    "Give the lease back with a reason; parked after too many attempts", body=FailRequest,
)  # fmt: skip
RENEW = Route(
    "renew", "POST", "/v1/leases/renew",
    "Extend the live lease (heartbeat TTL/3); 409 stale; 403: other client", body=RenewRequest,
)  # fmt: skip
LIST = Route(
    "list", "GET", "/v1/leases",
    "Operator listing: parked (failed) keys, or expired keys not re-claimed",
)  # fmt: skip
RECOVER = Route(
    "recover", "POST", "/v1/leases/recover",
    "Make a parked or expired key claimable again (force for live/completed)",
)  # fmt: skip
INSPECT = Route(
    "inspect", "GET", "/v1/leases/{key:path}",
    "Inspect a key: state, holder, token, lease end, attempts",
)  # fmt: skip
# `/health` is what QMTL's own operator tool (scripts/seamless_health_check.py) probes.
HEALTH = Route("healthz", "GET", "/health", public=True)
HEALTHZ = Route("healthz", "GET", "/healthz", public=True)
READYZ = Route("readyz", "GET", "/readyz", public=True)
METRICS = Route("metrics", "GET", "/metrics", public=True)

ROUTES = (CLAIM, COMPLETE, FAIL, RENEW, LIST, RECOVER, INSPECT, HEALTH, HEALTHZ, READYZ, METRICS)
HOT_ROUTES = tuple(route for route in ROUTES if route.body is not None)

# FastAPI's own document routes are public too (`/docs` is off, and answers 404 unguarded).
PUBLIC_PATHS = frozenset(
    {route.path for route in ROUTES if route.public} | {"/openapi.json", "/docs"}
)

_LABELS = {route.path: route.label for route in ROUTES if route.prefix is None}
_TEMPLATED = tuple((route.prefix, route.label) for route in ROUTES if route.prefix is not None)


def route_label(path: str) -> str:
    """The metrics label of the route serving `path`; 'other' for unknown paths."""
    label = _LABELS.get(path)
    if label is not None:
        return label
    for prefix, templated_label in _TEMPLATED:
        if prefix and path.startswith(prefix):
            return templated_label
    return "other"
