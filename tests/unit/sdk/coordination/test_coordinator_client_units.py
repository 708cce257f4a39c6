"""Client pieces that need no server: worker identity, Retry-After, argument checks,
and that a refused connection is CoordinatorUnavailable (never "no lease")."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from seamless.coordination.client import CoordinatorClient, parse_retry_after, resolve_worker_id
from seamless.coordination.protocol import Lease
from seamless.coordination.transport import KeepAliveTransport
from seamless.errors import CoordinatorUnavailable, InvalidRequestError, LeaseLost

pytestmark = pytest.mark.unit


def test_worker_id_order_is_qmtls() -> None:
    env = {"QMTL_SEAMLESS_WORKER": "a", "QMTL_WORKER_ID": "b", "HOSTNAME": "c"}
    assert resolve_worker_id("cfg", env) == "cfg"
    assert resolve_worker_id(None, env) == "a"
    assert resolve_worker_id(None, {"QMTL_WORKER_ID": "b", "HOSTNAME": "c"}) == "b"
    assert resolve_worker_id("  ", {"HOSTNAME": "c"}) == "c"
    assert resolve_worker_id(None, {}) == socket.gethostname()


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == pytest.approx(7.0)


async def test_bad_arguments_are_named_before_sending() -> None:
    async with CoordinatorClient("http://127.0.0.1:9") as client:
        with pytest.raises(InvalidRequestError) as caught:
            await client.claim("k", lease_ms=5)
        assert caught.value.argument == "lease_ms"
        with pytest.raises(InvalidRequestError):
            await client.claim("", lease_ms=1000)


async def test_refused_connection_is_unavailable_not_no_lease() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with CoordinatorClient(f"http://127.0.0.1:{port}", timeout=1) as client:
            lease = Lease(key="k", token=1, lease_until_ms=0)
            for call in (
                client.claim("k", 1000),
                client.renew(lease, 1000),
                client.complete(lease),
                client.fail(lease, "x"),
                client.inspect("k"),
                client.health(),
            ):
                with pytest.raises(CoordinatorUnavailable):
                    await call


def _replying(*answers: int | type[httpx.TransportError]) -> tuple[httpx.MockTransport, list]:
    """A transport answering each request with the next status, or raising the next error."""
    queue, seen = list(answers), []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content) if request.content else None)
        answer = queue.pop(0)
        if isinstance(answer, int):
            headers = {"Retry-After": "0"} if answer == 429 else {}
            body: dict = {"lease": {"key": "k", "token": 7, "lease_until_ms": 1}}
            if answer == 409:
                body = {"reason": "stale", "completion_ratio": None}
            return httpx.Response(answer, json=body, headers=headers)
        raise answer("simulated", request=request)

    return httpx.MockTransport(handle), seen


async def test_rate_limits_and_lost_replies_have_their_own_budgets_mock_transport() -> None:
    transport, seen = _replying(429, httpx.ReadError, 429, httpx.RemoteProtocolError, 200)
    async with CoordinatorClient("http://coordinator", transport=transport,
                                 transport_backoff=0) as client:  # fmt: skip
        outcome = await client.claim("k", 1000)
    assert outcome.lease.token == 7  # type: ignore[union-attr]
    assert len(seen) == 5 and all(body == seen[0] for body in seen)  # one request id


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError, httpx.ReadError])
async def test_no_answer_is_retried_then_unavailable_mock_transport(
    error: type[httpx.TransportError],
) -> None:
    transport, seen = _replying(error, error, error, 200)
    async with CoordinatorClient("http://coordinator", transport=transport,
                                 transport_backoff=0) as client:  # fmt: skip
        with pytest.raises(CoordinatorUnavailable, match="no answer to 3 attempts"):
            await client.claim("k", 1000)
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2]  # the same request id each time


@pytest.mark.parametrize("status", [409, 500, 503])
async def test_an_answer_is_never_retried_mock_transport(status: int) -> None:
    transport, seen = _replying(status, 200)
    async with CoordinatorClient("http://coordinator", transport=transport) as client:
        with pytest.raises(LeaseLost if status == 409 else CoordinatorUnavailable):
            await client.complete(Lease(key="k", token=7, lease_until_ms=1))
    assert len(seen) == 1


async def test_a_health_probe_is_not_retried_mock_transport() -> None:
    transport, seen = _replying(httpx.ConnectError, 200)
    async with CoordinatorClient("http://coordinator", transport=transport) as client:
        with pytest.raises(CoordinatorUnavailable):
            await client.health()
    assert len(seen) == 1


async def test_plain_http_goes_through_the_keep_alive_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lean transport for http:// without a proxy; httpx's own for https and when a
    proxy variable is set (so proxies are honoured as before)."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)

    def uses_lean(url: str) -> bool:
        transport = CoordinatorClient(url, worker_id="w")._http._transport
        return isinstance(transport, KeepAliveTransport)

    assert uses_lean("http://coordinator:8080")
    assert not uses_lean("https://coordinator:8443")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    assert not uses_lean("http://coordinator:8080")
