"""The service driven exactly as QMTL's `DistributedBackfillCoordinator` drives it: the
same three POST bodies (`{key, lease_ms}`, `{key, token}` with the token echoed as a
string, `{key, token, reason}`), a fresh httpx client per call with a 2 s timeout (built by
its `client_factory` hook, which is where a deployment adds the bearer header), 404/409 on
claim read as "no lease", 404/409 on complete/fail tolerated, and the completion ratio
defaults QMTL applies (1.0 after complete, 0.0 after fail).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from lab.coordinator_process import CoordinatorServer

pytestmark = pytest.mark.integration


@dataclass
class QmtlLease:
    key: str
    token: str
    lease_until_ms: int


class QmtlStyleClient:
    """QMTL's client behaviour, request for request, recording the ratios it would export."""

    def __init__(self, base_url: str, client_factory: Callable[[], httpx.AsyncClient]) -> None:
        self._base_url = base_url.rstrip("/")
        self._client_factory = client_factory
        self.ratios: list[tuple[str, float]] = []

    async def _post(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        async with self._client_factory() as client:
            return await client.post(f"{self._base_url}{path}", json=payload)

    async def claim(self, key: str, lease_ms: int) -> QmtlLease | None:
        try:
            response = await self._post("/v1/leases/claim", {"key": key, "lease_ms": lease_ms})
        except httpx.RequestError:
            return None
        if response.status_code in {404, 409}:
            return None
        response.raise_for_status()
        data = response.json()
        lease_data = data.get("lease") or {}
        token = lease_data.get("token")
        lease_until = lease_data.get("lease_until_ms")
        if not token or lease_until is None:
            return None
        if data.get("completion_ratio") is not None:
            self.ratios.append((key, float(data["completion_ratio"])))
        return QmtlLease(key=key, token=str(token), lease_until_ms=int(lease_until))

    async def _finish(self, path: str, payload: dict[str, Any], default: float) -> int:
        response = await self._post(path, payload)
        if response.status_code >= 400 and response.status_code not in {404, 409}:
            response.raise_for_status()
        data = response.json()
        self.ratios.append((payload["key"], float(data.get("completion_ratio", default))))
        return response.status_code

    async def complete(self, lease: QmtlLease) -> int:
        payload = {"key": lease.key, "token": lease.token}
        return await self._finish("/v1/leases/complete", payload, 1.0)

    async def fail(self, lease: QmtlLease, reason: str) -> int:
        payload = {"key": lease.key, "token": lease.token, "reason": reason}
        return await self._finish("/v1/leases/fail", payload, 0.0)


@pytest.fixture
def qmtl(coordinator_server: CoordinatorServer) -> QmtlStyleClient:
    headers = coordinator_server.auth_headers()
    return QmtlStyleClient(
        coordinator_server.url, lambda: httpx.AsyncClient(timeout=2.0, headers=headers)
    )


async def test_qmtl_claim_complete_and_no_lease_answers(qmtl: QmtlStyleClient) -> None:
    key = "qmtl-node:60:0:6000::"  # empty world and as_of, as QMTL writes them
    lease = await qmtl.claim(key, 120_000)
    assert lease is not None and lease.token.isdigit()
    assert await qmtl.claim(key, 120_000) is None  # 409 held -> "no lease"
    assert await qmtl.complete(lease) == 200
    assert qmtl.ratios[-1] == (key, 1.0)
    assert await qmtl.claim(key, 120_000) is None  # 409 completed -> "no lease"
    # A repeated complete (QMTL resends one whose reply it lost) answers as the first did.
    assert await qmtl.complete(lease) == 200
    assert qmtl.ratios[-1] == (key, 1.0)


async def test_qmtl_fail_then_reclaim(qmtl: QmtlStyleClient) -> None:
    key = "qmtl-node:60:6000:12000:world:2025-01-01"
    first = await qmtl.claim(key, 120_000)
    assert first is not None
    assert await qmtl.fail(first, "upstream timeout") == 200
    assert qmtl.ratios[-1] == (key, 0.0)
    second = await qmtl.claim(key, 120_000)
    assert second is not None and int(second.token) > int(first.token)
    assert await qmtl.fail(first, "late duplicate") == 409  # old token: stale, tolerated
    assert await qmtl.complete(second) == 200


async def test_qmtl_client_without_credentials_sees_401_not_a_lease(
    coordinator_server: CoordinatorServer,
) -> None:
    anonymous = QmtlStyleClient(coordinator_server.url, lambda: httpx.AsyncClient(timeout=2.0))
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await anonymous.claim("qmtl-node:60:0:1::", 120_000)
    assert raised.value.response.status_code == 401
