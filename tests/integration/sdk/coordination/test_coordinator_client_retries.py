"""The client retries a request whose reply was lost, with the same body, against the real
coordinator service (issue 17, item 5). The lost reply is faked in the client's transport
(`ReplyDropper`): the request really reaches the service and is applied, then the
response is thrown away and httpx.ReadError raised, as when a connection dies mid-reply.
Hence the `_mock_transport` suffix: the network fault is simulated, the service is real."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from sdk_client_servers import RealCoordinator
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import Granted, NotGranted
from seamless.errors import CoordinatorUnavailable

pytestmark = pytest.mark.integration


class ReplyDropper(httpx.AsyncBaseTransport):
    """Sends every request for real; for the first `drops[path]` requests to a path, reads
    the reply, discards it and raises ReadError. `connect_failures[path]` requests fail
    with ConnectError before anything is sent."""

    def __init__(
        self, drops: dict[str, int] | None = None, connect_failures: dict[str, int] | None = None
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.drops = Counter(drops or {})
        self.connect_failures = Counter(connect_failures or {})
        self.sent: list[tuple[str, bytes]] = []
        self.dropped: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.connect_failures[path] > 0:
            self.connect_failures[path] -= 1
            raise httpx.ConnectError("simulated: connection refused", request=request)
        self.sent.append((path, request.content))
        response = await self._inner.handle_async_request(request)
        if self.drops[path] > 0:
            self.drops[path] -= 1
            await response.aread()  # the service answered; the answer is lost on the way
            await response.aclose()
            self.dropped.append(response)
            raise httpx.ReadError("simulated: connection reset mid-reply", request=request)
        return response

    def bodies(self, path: str) -> list[bytes]:
        return [body for sent_path, body in self.sent if sent_path == path]

    async def aclose(self) -> None:
        await self._inner.aclose()


def _client(
    server: RealCoordinator, transport: ReplyDropper, **kwargs: object
) -> CoordinatorClient:
    options: dict[str, object] = {"token": server.token, "worker_id": "retry-test", **kwargs}
    return CoordinatorClient(server.url, transport=transport, **options)  # type: ignore[arg-type]


async def _granted(client: CoordinatorClient, key: str) -> Granted:
    outcome = await client.claim(key, 10_000)
    assert isinstance(outcome, Granted), outcome
    return outcome


async def test_a_complete_whose_reply_was_lost_is_retried_and_completes_mock_transport(
    real_coordinator: RealCoordinator,
) -> None:
    key = "retry:complete:60:0:1::"
    transport = ReplyDropper({"/v1/leases/complete": 1})
    async with _client(real_coordinator, transport) as client:
        granted = await _granted(client, key)
        ratio = await client.complete(granted.lease)  # no LeaseLost: the retry is a replay
        assert ratio.completion_ratio == 1.0
        info = await client.inspect(key)
    assert (info.state, info.token) == ("completed", granted.lease.token)
    first, retry = transport.bodies("/v1/leases/complete")
    assert first == retry
    # The lost reply was the real 200: the retry got the same answer.
    assert transport.dropped[0].status_code == 200
    assert transport.dropped[0].json() == ratio.model_dump(mode="json")


async def test_a_claim_whose_reply_was_lost_gets_its_lease_back_mock_transport(
    real_coordinator: RealCoordinator,
) -> None:
    key = "retry:claim:60:0:1::"
    transport = ReplyDropper({"/v1/leases/claim": 1})
    async with _client(real_coordinator, transport) as client:
        granted = await _granted(client, key)  # not 409 held by our own lost claim
        info = await client.inspect(key)
    assert (info.state, info.token, info.attempts) == ("held", granted.lease.token, 1)
    assert transport.dropped[0].json()["lease"] == granted.lease.model_dump(mode="json")
    first, retry = transport.bodies("/v1/leases/claim")
    assert first == retry  # the same request id


async def test_a_fail_whose_reply_was_lost_is_retried_mock_transport(
    real_coordinator: RealCoordinator,
) -> None:
    key = "retry:fail:60:0:1::"
    transport = ReplyDropper({"/v1/leases/fail": 1})
    async with _client(real_coordinator, transport) as client:
        granted = await _granted(client, key)
        result = await client.fail(granted.lease, "upstream 500")
        info = await client.inspect(key)
    assert (result.parked, result.attempts) == (False, 1)
    assert (info.state, info.attempts, info.last_reason) == ("free", 1, "upstream 500")


async def test_a_renew_whose_reply_was_lost_is_retried_mock_transport(
    real_coordinator: RealCoordinator,
) -> None:
    key = "retry:renew:60:0:1::"
    transport = ReplyDropper({"/v1/leases/renew": 1})
    async with _client(real_coordinator, transport) as client:
        granted = await _granted(client, key)
        renewed = await client.renew(granted.lease, 60_000)
    assert renewed.token == granted.lease.token
    assert renewed.lease_until_ms > granted.lease.lease_until_ms
    assert len(transport.bodies("/v1/leases/renew")) == 2


async def test_a_refused_connection_is_retried_mock_transport(
    real_coordinator: RealCoordinator,
) -> None:
    transport = ReplyDropper(connect_failures={"/v1/leases/claim": 2})
    async with _client(real_coordinator, transport) as client:
        await _granted(client, "retry:connect:60:0:1::")
    assert len(transport.bodies("/v1/leases/claim")) == 1


async def test_replies_lost_on_every_attempt_are_unavailable_mock_transport(
    real_coordinator: RealCoordinator,
) -> None:
    key = "retry:lost:60:0:1::"
    transport = ReplyDropper({"/v1/leases/claim": 3})
    async with _client(real_coordinator, transport) as client:
        with pytest.raises(CoordinatorUnavailable, match=r"ReadError.*no answer to 3 attempts"):
            await client.claim(key, 10_000)
        # Three replays of one claim: one lease, one attempt, ours if we ask again with its id.
        info = await client.inspect(key)
        assert (info.state, info.attempts) == ("held", 1)
        request_id = json.loads(transport.bodies("/v1/leases/claim")[0])["request_id"]
        again = await client.claim(key, 10_000, request_id=request_id)
        assert isinstance(again, Granted) and again.lease.token == info.token
        # A new claim (a fresh request id) is another claim: the key is held.
        other = await client.claim(key, 10_000)
        assert isinstance(other, NotGranted) and other.reason == "held"


async def test_without_retries_a_lost_complete_reply_is_unavailable_mock_transport(
    real_coordinator: RealCoordinator,
) -> None:
    """The case retries exist for: the complete was applied, the caller only learns that
    the coordinator gave no answer."""
    key = "retry:no-retry:60:0:1::"
    transport = ReplyDropper({"/v1/leases/complete": 1})
    async with _client(real_coordinator, transport, transport_attempts=1) as client:
        granted = await _granted(client, key)
        with pytest.raises(CoordinatorUnavailable, match=r"no answer to 1 attempt\)"):
            await client.complete(granted.lease)
        # The repeat the caller may send later still answers as the complete did.
        assert (await client.complete(granted.lease)).completion_ratio == 1.0
