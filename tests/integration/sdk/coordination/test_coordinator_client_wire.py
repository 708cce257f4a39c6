"""The coordinator client against a real HTTP server speaking the protocol, with faults
injected: 409 variants, 5xx, 401, 429 + Retry-After, timeouts, bodies that are truncated,
not JSON or the wrong shape. None of them may read as "no lease"."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sdk_client_servers import CoordinatorDouble
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import Granted, NotGranted
from seamless.coordination.leases import hold_lease
from seamless.errors import (
    CoordinatorAuthError,
    CoordinatorUnavailable,
    LeaseLost,
)

pytestmark = pytest.mark.integration


def _client(double: CoordinatorDouble, **kwargs: object) -> CoordinatorClient:
    options: dict[str, object] = {"token": double.token, "worker_id": "wire-test", **kwargs}
    return CoordinatorClient(double.url, **options)  # type: ignore[arg-type]


async def _granted(client: CoordinatorClient, key: str, lease_ms: int = 5000) -> Granted:
    outcome = await client.claim(key, lease_ms)
    assert isinstance(outcome, Granted), outcome
    return outcome


async def test_full_lease_cycle_and_typed_results(double: CoordinatorDouble) -> None:
    async with _client(double) as client:
        granted = await _granted(client, "wire:cycle")
        assert granted.lease.key == "wire:cycle"
        assert await client.claim("wire:cycle", 5000) == NotGranted(
            "wire:cycle", "held", granted.lease.lease_until_ms
        )
        renewed = await client.renew(granted.lease, 5000)
        assert renewed.token == granted.lease.token
        ratio = await client.complete(renewed)
        assert ratio.completion_ratio == 1.0
        outcome = await client.claim("wire:cycle", 5000)
        assert isinstance(outcome, NotGranted) and outcome.reason == "completed"
        assert await client.complete(renewed) == ratio  # a repeat answers as the first did
    first, second = double.stats()["bodies"]["claim"][:2]
    request_id = first.pop("request_id")
    assert first == {"key": "wire:cycle", "lease_ms": 5000, "holder": "wire-test"}
    # Every claim carries a fresh request id (uuid4 hex).
    assert re.fullmatch("[0-9a-f]{32}", request_id) and second["request_id"] != request_id


@pytest.mark.parametrize("reason", ["held", "completed", "failed"])
async def test_409_reasons_on_claim_are_not_granted(double: CoordinatorDouble, reason: str) -> None:
    double.fault("claim", f"conflict:{reason}")
    async with _client(double) as client:
        outcome = await client.claim(f"wire:409:{reason}", 5000)
    assert outcome == NotGranted(f"wire:409:{reason}", reason, 123)  # type: ignore[arg-type]


@pytest.mark.parametrize("route", ["renew", "complete", "fail"])
async def test_409_stale_is_lease_lost(double: CoordinatorDouble, route: str) -> None:
    async with _client(double) as client:
        granted = await _granted(client, f"wire:stale:{route}")
        double.fault(route, "conflict:stale")
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "renew": lambda: client.renew(granted.lease, 5000),
            "complete": lambda: client.complete(granted.lease),
            "fail": lambda: client.fail(granted.lease, "x"),
        }
        with pytest.raises(LeaseLost) as caught:
            await calls[route]()
        assert caught.value.token == granted.lease.token


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(double: CoordinatorDouble, status: int) -> None:
    double.fault("claim", f"status:{status}")
    async with _client(double) as client:
        with pytest.raises(CoordinatorUnavailable, match=f"HTTP {status}"):
            await client.claim(f"wire:5xx:{status}", 5000)


async def test_404_is_unavailable_not_no_lease(double: CoordinatorDouble) -> None:
    double.fault("claim", "status:404")
    async with _client(double) as client:
        with pytest.raises(CoordinatorUnavailable, match="404"):
            await client.claim("wire:404", 5000)


@pytest.mark.parametrize("mode", ["garbage", "wrong_shape"])
async def test_unparsable_body_is_unavailable(double: CoordinatorDouble, mode: str) -> None:
    double.fault("claim", mode)
    async with _client(double) as client:
        with pytest.raises(CoordinatorUnavailable, match="not a valid ClaimResponse"):
            await client.claim(f"wire:{mode}", 5000)


async def test_slow_answer_times_out_as_unavailable(double: CoordinatorDouble) -> None:
    double.fault("claim", "sleep:3", times=3)
    async with _client(double, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(CoordinatorUnavailable, match=r"timed out .*no answer to 3 attempts"):
            await client.claim("wire:slow", 5000)
        assert time.monotonic() - started < 2.0  # three 0.3 s timeouts and short backoffs
    assert double.stats()["hits"]["claim"] == 3


async def test_one_timeout_is_retried(double: CoordinatorDouble) -> None:
    # (That the retry sends the same body is checked in the client's unit tests: the double
    # drops the timed-out request's body when the client hangs up.)
    double.fault("claim", "sleep:1", times=1)
    async with _client(double, timeout=0.3) as client:
        await _granted(client, "wire:slow-once")
    assert double.stats()["hits"]["claim"] == 2


async def test_bad_token_is_an_auth_error(double: CoordinatorDouble) -> None:
    async with CoordinatorClient(double.url, token="wrong") as client:
        with pytest.raises(CoordinatorAuthError):
            await client.claim("wire:auth", 5000)
    async with CoordinatorClient(double.url) as client:
        with pytest.raises(CoordinatorAuthError):
            await client.inspect("wire:auth")


async def test_429_honours_retry_after_then_succeeds(double: CoordinatorDouble) -> None:
    double.fault("claim", "status:429", times=2, retry_after="0.3")
    async with _client(double) as client:
        started = time.monotonic()
        await _granted(client, "wire:429")
        elapsed = time.monotonic() - started
    assert double.stats()["hits"]["claim"] == 3
    assert elapsed >= 0.55  # two waits of Retry-After 0.3 s


async def test_429_that_never_ends_is_unavailable(double: CoordinatorDouble) -> None:
    double.fault("claim", "status:429", times=10, retry_after="0.05")
    async with _client(double, rate_limit_attempts=3) as client:
        with pytest.raises(CoordinatorUnavailable, match="429"):
            await client.claim("wire:429:forever", 5000)
    assert double.stats()["hits"]["claim"] == 3


async def test_retry_after_is_capped(double: CoordinatorDouble) -> None:
    double.fault("claim", "status:429", times=1, retry_after="3600")
    async with _client(double, max_retry_after=0.2) as client:
        started = time.monotonic()
        await _granted(client, "wire:429:cap")
        assert time.monotonic() - started < 2.0


async def test_inspect_url_encodes_the_key(double: CoordinatorDouble) -> None:
    key = "node/a b:60:0:100:w?x#y:"
    async with _client(double) as client:
        granted = await _granted(client, key)
        info = await client.inspect(key)
    assert (info.key, info.state, info.token) == (key, "held", granted.lease.token)
    raw_path = double.stats()["bodies"]["inspect"][0]
    assert raw_path == "/v1/leases/node%2Fa%20b%3A60%3A0%3A100%3Aw%3Fx%23y%3A"


async def test_one_pooled_connection_for_many_requests(double: CoordinatorDouble) -> None:
    async with _client(double) as client:
        for shard in range(10):
            await _granted(client, f"wire:pool:{shard}")
    ports = set(double.stats()["ports"])
    assert len(ports) == 1  # keep-alive: ten requests, one TCP connection


async def test_health(double: CoordinatorDouble) -> None:
    async with _client(double) as client:
        await client.health()
        double.fault("healthz", "status:503")
        with pytest.raises(CoordinatorUnavailable, match="503"):
            await client.health()


async def test_lease_renewal_over_http_and_loss_on_stale(double: CoordinatorDouble) -> None:
    async with _client(double) as client:
        with pytest.raises(LeaseLost):
            async with hold_lease(client, "wire:hold", 300) as held:
                deadline = time.monotonic() + 5
                while held.renewals < 2:
                    assert time.monotonic() < deadline, "no renewals"
                    await asyncio.sleep(0.01)
                double.fault("renew", "conflict:stale")
                await asyncio.sleep(30)  # cancelled when the stale answer arrives
        assert held.is_lost
    assert double.stats()["hits"]["renew"] >= 3


async def test_renew_outage_shorter_than_the_lease_is_survived(double: CoordinatorDouble) -> None:
    async with _client(double) as client:
        async with hold_lease(client, "wire:blip", 600) as held:
            double.fault("renew", "status:503", times=1)
            deadline = time.monotonic() + 5
            while held.renewals < 2:
                assert time.monotonic() < deadline, "renewal did not recover"
                await asyncio.sleep(0.01)
            assert not held.is_lost
        assert held.result is not None
    assert double.stats()["hits"]["complete"] == 1


# --- raw sockets: what an HTTP framework will not send ---------------------------------------


@contextlib.asynccontextmanager
async def raw_server(reply: bytes | None) -> AsyncIterator[str]:
    """A TCP server that reads a request and sends `reply` then closes (None: never answers)."""
    hang = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            if reply is None:
                await hang.wait()
            writer.write(reply or b"")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        hang.set()
        server.close()
        await server.wait_closed()


TRUNCATED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    b'{"lease": {"key": "k", "token": 7'
)


async def test_truncated_body_is_unavailable() -> None:
    async with raw_server(TRUNCATED) as url, CoordinatorClient(url, timeout=2) as client:
        with pytest.raises(CoordinatorUnavailable, match="RemoteProtocolError"):
            await client.claim("raw:truncated", 5000)


async def test_server_that_never_answers_times_out() -> None:
    async with raw_server(None) as url, CoordinatorClient(url, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(CoordinatorUnavailable, match="timed out"):
            await client.claim("raw:hang", 5000)
        assert time.monotonic() - started < 2.0


async def test_connection_closed_without_answer_is_unavailable() -> None:
    async with raw_server(b"") as url, CoordinatorClient(url, timeout=2) as client:
        with pytest.raises(CoordinatorUnavailable):
            await client.claim("raw:closed", 5000)
