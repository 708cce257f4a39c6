"""The HTTP edge without Redis: auth and input validation answer before the store is ever
touched (the app's lifespan is not run, so any store access would be a 503)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from seamless.coordinator import CoordinatorSettings, create_app

pytestmark = pytest.mark.unit

TOKEN = "unit-test-token-0123456789"


@pytest.fixture
def client() -> httpx.AsyncClient:
    settings = CoordinatorSettings(
        redis_dsn="redis://127.0.0.1:1/0", tokens={"unit": SecretStr(TOKEN)}, prometheus_port=0
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://c"
    )


async def test_without_token_401_and_public_routes_open(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/leases/claim", json={"key": "k", "lease_ms": 1000})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert (await client.get("/metrics")).status_code == 200
    health = await client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert (await client.get("/openapi.json")).status_code == 200


async def test_invalid_body_is_422_before_any_store_access(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.post(
        "/v1/leases/claim", json={"key": "k", "lease_ms": 5}, headers=headers
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_request",
        "field": "lease_ms",
        "detail": "lease_ms: Input should be greater than or equal to 100",
    }
    # A valid body reaches the store, which is not started: 503, not a 500.
    response = await client.post(
        "/v1/leases/claim", json={"key": "k", "lease_ms": 500}, headers=headers
    )
    assert response.status_code == 503 and response.json()["error"] == "unavailable"


def test_openapi_declares_bearer_auth_and_error_shapes() -> None:
    settings = CoordinatorSettings(
        redis_dsn="redis://127.0.0.1:1/0", tokens={"unit": SecretStr(TOKEN)}, prometheus_port=0
    )
    schema = create_app(settings).openapi()
    claim = schema["paths"]["/v1/leases/claim"]["post"]
    assert claim["security"] == [{"bearerAuth": []}]
    assert {"200", "401", "409", "422", "429", "503"} <= set(claim["responses"])
    assert "security" not in schema["paths"]["/healthz"]["get"]
    key_schema = schema["components"]["schemas"]["ClaimRequest"]["properties"]["key"]
    assert key_schema["maxLength"] == 512 and "pattern" in key_schema
