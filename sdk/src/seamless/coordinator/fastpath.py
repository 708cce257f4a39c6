"""A direct ASGI path for the hot lease routes (claim, complete, fail, renew).

Every QMTL worker calls these in its backfill loop, and FastAPI's per-request machinery
(routing, dependency solving, request objects, exit stacks) costs more CPU than the Redis
round trip behind it. This layer reads the body, validates it with the same pydantic model
FastAPI would use, and calls the same handler function; anything else (other routes, other
methods) passes through to FastAPI untouched, so the OpenAPI document and the error shapes
stay one and the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from seamless.coordinator.guard import Caller

# A handler gets the validated body and the guard's `Caller`.
Handler = Callable[[Any, Caller], Awaitable[Response]]
# Unauthenticated (never reached behind the guard): no client, no role, so it owns nothing.
NOBODY = Caller("")
FastRoute = tuple[type[BaseModel], Handler]


class FastLeaseRoutes:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: dict[str, FastRoute],
        on_invalid: Callable[[Sequence[Any]], Response],
        on_store_error: Callable[[Exception], Response],
    ) -> None:
        self.app = app
        self._routes = routes
        self._on_invalid = on_invalid
        self._on_store_error = on_store_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        model, handler = route
        body = await _read_body(receive)
        try:
            request = model.model_validate_json(body)
        except ValidationError as exc:
            response = self._on_invalid(exc.errors(include_url=False))
        else:
            try:
                response = await handler(request, scope.get("state", {}).get("caller", NOBODY))
            except (RedisError, TimeoutError) as exc:
                response = self._on_store_error(exc)
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
