"""Client pieces that need no server: worker identity, Retry-After, argument checks,
and that a refused connection is CoordinatorUnavailable (never "no lease")."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from seamless.coordinator_client import CoordinatorClient, parse_retry_after, resolve_worker_id
from seamless.errors import CoordinatorUnavailable, InvalidRequestError
from seamless.protocol import Lease

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
