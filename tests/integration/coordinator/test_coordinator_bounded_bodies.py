"""Bodies are bounded while they are read: a chunked body (no Content-Length) over the cap is
refused with 413 on every route, the hot fast-path routes included, after reading only about
the cap, and the serving process's memory stays flat. Against a real coordinator process
over TCP, because the framing is what is under test."""

from __future__ import annotations

import select
import socket
from pathlib import Path

import pytest

from lab.coordinator_process import CoordinatorServer

pytestmark = pytest.mark.integration

CAP = 64 * 1024
OFFERED = 300 * 1024 * 1024  # what the attacker would send: 300 MB
CHUNK = b"x" * 65536
FRAME = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _send_chunked(server: CoordinatorServer, method: str, path: str) -> tuple[bytes, int]:
    """Stream chunks until the server answers (or the 300 MB are sent): (status line, bytes
    sent)."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: coordinator\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    sent = 0
    answer = b""
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(head)
        while sent < OFFERED:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(FRAME)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
    return answer.split(b"\r\n", 1)[0], sent


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/leases/claim"),  # the fast path
        ("POST", "/v1/leases/complete"),  # the fast path
        ("POST", "/v1/leases/recover"),  # FastAPI
        ("GET", "/v1/leases"),  # FastAPI, a GET with a body
        ("GET", "/healthz"),  # public
    ],
)
def test_chunked_body_over_the_cap_is_413_and_memory_stays_flat(
    coordinator_server: CoordinatorServer, method: str, path: str
) -> None:
    before = _rss_bytes(coordinator_server.pid)
    status, sent = _send_chunked(coordinator_server, method, path)
    after = _rss_bytes(coordinator_server.pid)
    assert status == b"HTTP/1.1 413 Request Entity Too Large", (status, sent)
    # Socket buffers take a few MB before the server answers; a server that read the whole
    # body would have taken all 300 MB.
    assert sent < 32 * 1024 * 1024, f"{sent} bytes accepted before the 413"
    assert after - before < 16 * 1024 * 1024, f"RSS grew {(after - before) >> 20} MiB"


def test_chunked_body_under_the_cap_is_served(coordinator_server: CoordinatorServer) -> None:
    body = b'{"key": "bounded-ok:60:0:60::", "lease_ms": 1000}'
    request = (
        "POST /v1/leases/claim HTTP/1.1\r\nHost: coordinator\r\n"
        f"Authorization: Bearer {coordinator_server.token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    half = len(body) // 2
    for part in (body[:half], body[half:]):
        request += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    request += b"0\r\n\r\n"
    with socket.create_connection((coordinator_server.host, coordinator_server.port), 30) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b'"token"' in answer
