"""A real HTTP server speaking the coordinator protocol, with faults on demand.

A test double of the SERVER, used only to exercise the client's wire handling (5xx, 409
variants, 429 + Retry-After, slow answers, bodies that are not JSON or not the right
shape) and to count health probes. Lease semantics come from `InMemoryCoordinator`.
Run as a process: `python coordinator_double.py PORT TOKEN`.

Control routes (no auth): POST /_reset clears faults and counters; POST /_faults
{"route", "mode", "times", "retry_after"?} queues `times` faults for a route; GET /_stats
gives hits per route and the client ports seen.
Modes: "status:CODE", "sleep:SECONDS", "garbage", "wrong_shape", "conflict:REASON".
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict, deque
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from seamless.coordination.interface import Granted
from seamless.coordination.memory import InMemoryCoordinator
from seamless.coordination.protocol import (
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    ConflictResponse,
    FailRequest,
    Lease,
    RenewRequest,
    RenewResponse,
)
from seamless.errors import InvalidRequestError, LeaseLost


def build_app(token: str) -> FastAPI:
    app = FastAPI()
    coordinator = InMemoryCoordinator(max_attempts=2)
    faults: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
    hits: dict[str, int] = defaultdict(int)
    ports: list[int] = []
    bodies: dict[str, list[Any]] = defaultdict(list)

    async def gate(route: str, request: Request) -> Response | None:
        hits[route] += 1
        if request.client is not None:
            ports.append(request.client.port)
        if route != "healthz" and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        queue = faults[route]
        if not queue:
            return None
        fault = queue[0]
        fault["times"] -= 1
        if fault["times"] <= 0:
            queue.popleft()
        kind, _, arg = fault["mode"].partition(":")
        if kind == "sleep":
            await asyncio.sleep(float(arg))
            return None
        if kind == "status":
            headers = {}
            if fault.get("retry_after") is not None:
                headers["Retry-After"] = str(fault["retry_after"])
            return JSONResponse({"error": "injected"}, status_code=int(arg), headers=headers)
        if kind == "garbage":
            return Response(b'{"lease": {"key": "k", "tok', media_type="application/json")
        if kind == "wrong_shape":
            return JSONResponse({"unexpected": True})
        if kind == "conflict":
            return JSONResponse({"reason": arg, "lease_until_ms": 123}, status_code=409)
        raise ValueError(f"unknown fault mode {fault['mode']!r}")

    @app.post("/_faults")
    async def add_fault(fault: dict[str, Any]) -> dict[str, str]:
        faults[fault["route"]].append({"times": 1, **fault})
        return {"status": "queued"}

    @app.post("/_reset")
    async def reset() -> dict[str, str]:
        faults.clear()
        hits.clear()
        ports.clear()
        bodies.clear()
        return {"status": "reset"}

    @app.get("/_stats")
    async def stats() -> dict[str, Any]:
        return {"hits": dict(hits), "ports": ports, "bodies": dict(bodies)}

    @app.get("/healthz")
    async def healthz(request: Request) -> Response:
        return await gate("healthz", request) or JSONResponse({"status": "ok"})

    @app.post("/v1/leases/claim")
    async def claim(request: Request) -> Response:
        if (fault := await gate("claim", request)) is not None:
            return fault
        raw = await request.json()
        bodies["claim"].append(raw)
        body = ClaimRequest.model_validate(raw)
        try:
            outcome = await coordinator.claim(
                body.key,
                body.lease_ms,
                job_id=body.job_id,
                shards_total=body.shards_total,
                request_id=body.request_id,
            )
        except InvalidRequestError as exc:
            return JSONResponse({"error": "invalid", "field": exc.argument}, status_code=422)
        if isinstance(outcome, Granted):
            response = ClaimResponse(lease=outcome.lease, completion_ratio=outcome.completion_ratio)
            return JSONResponse(response.model_dump(mode="json"))
        conflict = ConflictResponse(reason=outcome.reason, lease_until_ms=outcome.lease_until_ms)
        return JSONResponse(conflict.model_dump(mode="json"), status_code=409)

    def _lease(key: str, token_value: int) -> Lease:
        return Lease(key=key, token=token_value, lease_until_ms=0)

    def _stale(exc: LeaseLost) -> Response:
        return JSONResponse({"reason": "stale", "detail": exc.reason}, status_code=409)

    @app.post("/v1/leases/renew")
    async def renew(request: Request) -> Response:
        if (fault := await gate("renew", request)) is not None:
            return fault
        body = RenewRequest.model_validate(await request.json())
        try:
            lease = await coordinator.renew(_lease(body.key, body.token), body.lease_ms)
        except LeaseLost as exc:
            return _stale(exc)
        return JSONResponse(RenewResponse(lease=lease).model_dump(mode="json"))

    @app.post("/v1/leases/complete")
    async def complete(request: Request) -> Response:
        if (fault := await gate("complete", request)) is not None:
            return fault
        body = CompleteRequest.model_validate(await request.json())
        try:
            ratio = await coordinator.complete(_lease(body.key, body.token))
        except LeaseLost as exc:
            return _stale(exc)
        return JSONResponse(ratio.model_dump(mode="json"))

    @app.post("/v1/leases/fail")
    async def fail(request: Request) -> Response:
        if (fault := await gate("fail", request)) is not None:
            return fault
        body = FailRequest.model_validate(await request.json())
        try:
            ratio = await coordinator.fail(_lease(body.key, body.token), body.reason)
        except LeaseLost as exc:
            return _stale(exc)
        return JSONResponse(ratio.model_dump(mode="json"))

    @app.get("/v1/leases/{key:path}")
    async def inspect(key: str, request: Request) -> Response:
        if (fault := await gate("inspect", request)) is not None:
            return fault
        bodies["inspect"].append(request.scope.get("raw_path", b"").decode())
        info = await coordinator.inspect(key)
        return JSONResponse(info.model_dump(mode="json"))

    return app


if __name__ == "__main__":
    port, token = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(build_app(token), host="127.0.0.1", port=port, log_level="warning")
