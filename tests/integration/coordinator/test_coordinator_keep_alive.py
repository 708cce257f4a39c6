"""An idle keep-alive connection outlives the clients' idle expiry. Against a real coordinator
process over TCP, because connection reuse is what is under test.

httpx keeps an idle connection 5 s, uvicorn's default keep-alive was 5 s too: a request
sent on a connection as the service closed it died with a ReadError (chaos scenario 12
under load: two completes lost, their shards fetched twice)."""

from __future__ import annotations

import re
import socket
import time

import pytest
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.protocol import CLIENT_KEEP_ALIVE_SECONDS, SERVICE_KEEP_ALIVE_SECONDS
from seamless.coordination.transport import KeepAliveTransport

from lab.coordinator_process import CoordinatorServer

pytestmark = pytest.mark.integration

HTTPX_DEFAULT_KEEP_ALIVE = 5.0  # what QMTL's client (plain httpx) keeps idle connections


def _get_health(sock: socket.socket) -> bytes:
    """One whole response, body included: a body left unread would be taken for the start
    of the next response (the body can arrive in a segment of its own)."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: coordinator\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length is not None and len(body) < int(length.group(1)):
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_service_keeps_idle_connections_longer_than_any_client_reuses_them(
    coordinator_server: CoordinatorServer,
) -> None:
    assert CLIENT_KEEP_ALIVE_SECONDS < SERVICE_KEEP_ALIVE_SECONDS
    with socket.create_connection((coordinator_server.host, coordinator_server.port), 10) as sock:
        assert _get_health(sock).startswith(b"HTTP/1.1 200")
        # Idle past the point where a 5 s server closes, as a 5 s client would still reuse it.
        time.sleep(HTTPX_DEFAULT_KEEP_ALIVE + 1.5)
        sock.setblocking(False)
        try:
            closed = sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            closed = False
        sock.setblocking(True)
        assert not closed, "the coordinator closed an idle connection a client would reuse"
        assert _get_health(sock).startswith(b"HTTP/1.1 200")


def test_sdk_client_expires_idle_connections_before_the_service_does() -> None:
    # plain http: the SDK's keep-alive transport; https: httpx's own pool
    transport = CoordinatorClient("http://127.0.0.1:9")._http._transport
    assert isinstance(transport, KeepAliveTransport)
    assert transport.keepalive_expiry == CLIENT_KEEP_ALIVE_SECONDS < SERVICE_KEEP_ALIVE_SECONDS
    pool = CoordinatorClient("https://127.0.0.1:9")._http._transport._pool  # type: ignore[attr-defined]
    assert pool._keepalive_expiry == CLIENT_KEEP_ALIVE_SECONDS < SERVICE_KEEP_ALIVE_SECONDS
