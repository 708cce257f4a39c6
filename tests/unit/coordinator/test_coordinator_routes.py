"""Routes are declared once (issue 17, item 10): the app serves exactly the routes of
`routes.ROUTES`, the fast path exactly the hot ones, and the guard labels and opens paths
from the same table. No Redis: the app's lifespan is not run."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import SecretStr
from seamless.coordinator import CoordinatorSettings, create_app
from seamless.coordinator import routes as r
from seamless.coordinator.fastpath import FastLeaseRoutes
from seamless.coordinator.metrics import CoordinatorMetrics

pytestmark = pytest.mark.unit

TOKEN = "unit-test-token-0123456789"


def _settings() -> CoordinatorSettings:
    return CoordinatorSettings(
        redis_dsn="redis://127.0.0.1:1/0", tokens={"unit": SecretStr(TOKEN)}, prometheus_port=0
    )


def test_the_app_serves_exactly_the_declared_routes() -> None:
    app = create_app(_settings())
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert served == {(route.method, route.path) for route in r.ROUTES}


def test_the_fast_path_serves_the_hot_routes_with_their_models() -> None:
    app = create_app(_settings())
    layer: object = app.build_middleware_stack()
    while layer is not None and not isinstance(layer, FastLeaseRoutes):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, FastLeaseRoutes)
    table = layer._routes
    assert {path: model for path, (model, _handler) in table.items()} == {
        route.path: route.body for route in r.HOT_ROUTES
    }
    assert [route.label for route in r.HOT_ROUTES] == ["claim", "complete", "fail", "renew"]


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/v1/leases/claim", "claim"),
        ("/v1/leases", "list"),
        ("/v1/leases/recover", "recover"),
        ("/v1/leases/some:key:60", "inspect"),
        ("/health", "healthz"),
        ("/metrics", "metrics"),
        ("/v2/anything", "other"),
    ],
)
def test_request_metrics_label_each_route(path: str, label: str) -> None:
    assert r.route_label(path) == label


async def test_the_guard_refusals_keep_their_shapes() -> None:
    metrics = CoordinatorMetrics()
    app = create_app(_settings(), metrics=metrics)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://c"
    ) as client:
        unauthorized = await client.post("/v1/leases/claim", json={})
        too_large = await client.post(
            "/v1/leases/claim",
            content=b"x" * (64 * 1024 + 1),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        bad_worker = await client.post(
            "/v1/leases/claim",
            json={},
            headers={"Authorization": f"Bearer {TOKEN}", "X-Worker-Id": "w" * 129},
        )
        public = await client.get("/openapi.json")
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert unauthorized.json()["field"] == "Authorization"
    assert (too_large.status_code, too_large.json()["error"]) == (413, "too_large")
    assert (bad_worker.status_code, bad_worker.json()["field"]) == (400, "headers")
    assert public.status_code == 200
    requests = metrics.registry.get_sample_value(
        "seamless_coordinator_requests_total", {"route": "claim", "status": "401"}
    )
    assert requests == 1.0
