"""The outermost ASGI layer: bearer-token authentication, a request size cap, and request
metrics. Written as plain ASGI (not BaseHTTPMiddleware) because it runs on every request.

The size cap holds while the body is read, whatever its framing: a Content-Length over the
cap is refused before reading, and a chunked body is read here, chunk by chunk, and refused
with 413 as soon as it passes the cap. The inner layers (the fast path and FastAPI) get the
buffered body replayed, so no route can read more than the cap and memory stays flat.

Bearer tokens are looked up by their SHA-256 digest, so the comparison never runs over the
secret itself and a timing difference reveals nothing about it. `/healthz`, `/readyz`,
`/metrics` and the OpenAPI document are public; every other route answers 401 without a
valid token (unknown routes included, so probing reveals nothing either). An authenticated
request carries its `Caller` (client id, worker id, the client's roles) in
``scope["state"]["caller"]`` to the handlers, which decide what the roles allow.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seamless.coordinator import errors
from seamless.coordinator.metrics import CoordinatorMetrics
from seamless.coordinator.routes import PUBLIC_PATHS, route_label

WORKER_HEADER = b"x-worker-id"
MAX_WORKER_ID = 128


@dataclass(frozen=True)
class Caller:
    """Who sent an authenticated request: the client its bearer token names, the worker its
    X-Worker-Id names ('' without one), and the client's roles."""

    client: str
    worker: str = ""
    roles: frozenset[str] = frozenset()

    @property
    def rate_identity(self) -> str:
        """The rate limit counts per worker inside a client."""
        return f"{self.client}:{self.worker}"


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: Mapping[str, SecretStr],
        roles: Mapping[str, frozenset[str]],
        metrics: CoordinatorMetrics,
        max_body_bytes: int = 64 * 1024,
    ) -> None:
        self.app = app
        self._by_digest = {
            hashlib.sha256(secret.get_secret_value().encode()).digest(): (
                identity,
                roles[identity],
            )
            for identity, secret in tokens.items()
        }
        self._metrics = metrics
        self._max_body = max_body_bytes
        self._children: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def _authenticate(
        self, headers: list[tuple[bytes, bytes]]
    ) -> tuple[str, frozenset[str]] | None:
        for name, value in headers:
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() != b"bearer" or not credential:
                    return None
                return self._by_digest.get(hashlib.sha256(credential.strip()).digest())
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            status = await self._check(scope)
            if status:
                await self._refuse(scope, receive, send, status)
                return
            body = await self._read_bounded(receive)
            if body is None:
                status = 413
                await self._refuse(scope, receive, send, status)
                return
            await self.app(scope, _replay(body, receive), send_recording)
        finally:
            self._observe(route_label(path), status, time.perf_counter() - started)

    async def _check(self, scope: Scope) -> int:
        """0 when the request may proceed, else the status to refuse it with."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if scope["path"] not in PUBLIC_PATHS:
            authenticated = self._authenticate(headers)
            if authenticated is None:
                return 401
            client, roles = authenticated
            worker = ""
            for name, value in headers:
                if name == WORKER_HEADER:
                    worker = value.decode("latin-1").strip()
                    if len(worker) > MAX_WORKER_ID or not worker.isprintable():
                        return 400
            scope.setdefault("state", {})["caller"] = Caller(client, worker, roles)
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    return 400
                if int(value) > self._max_body:
                    return 413
        return 0

    async def _read_bounded(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the cap (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnect: nothing more will come
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        if status == 401:
            response = errors.unauthorized()
        elif status == 413:
            response = errors.too_large(self._max_body)
        else:
            response = errors.bad_headers()
        await response(scope, receive, send)

    def _observe(self, route: str, status: int, elapsed: float) -> None:
        child = self._children.get((route, status))
        if child is None:
            child = self._children[(route, status)] = self._metrics.requests.labels(
                route, str(status)
            )
        child.inc()
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = self._metrics.latency.labels(route)
        timer.observe(elapsed)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the buffered body over once, then waits for the disconnect."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
