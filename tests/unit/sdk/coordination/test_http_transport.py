"""`seamless.coordination.transport.KeepAliveTransport` against a scripted HTTP/1.1 server on
loopback: keep-alive reuse, Content-Length and chunked bodies, a server that closes idle or
mid-response, read timeouts, refused connections and the connection limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from seamless.coordination.transport import KeepAliveTransport

pytestmark = pytest.mark.unit

# (method, path, headers, body) -> raw bytes to send, or None to close without answering
Reply = Callable[[str, str, dict[str, str], bytes], Awaitable[bytes | None]]


def ok(body: bytes, *, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


class Server:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (line.split(":", 1) for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                answer = await self.reply(method, path, headers, body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close_idle_connections(self) -> None:
        for writer in self.writers:
            writer.close()


@contextlib.asynccontextmanager
async def serve(reply: Reply) -> AsyncIterator[Server]:
    server = Server(reply)
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = server.server.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        server.server.close()
        server.close_idle_connections()


async def echo(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    return ok(json.dumps({"method": method, "path": path, "body": body.decode()}).encode())


def client(
    server: Server, transport: KeepAliveTransport, timeout: float = 2.0
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", transport=transport, timeout=timeout
    )


async def test_sequential_requests_share_one_connection() -> None:
    transport = KeepAliveTransport()
    async with serve(echo) as server, client(server, transport) as http:
        for i in range(5):
            r = await http.post("/v1/leases/claim", json={"i": i}, headers={"X-Worker-Id": "w"})
            assert r.status_code == 200
            assert r.json() == {
                "method": "POST",
                "path": "/v1/leases/claim",
                "body": f'{{"i":{i}}}',
            }
        r = await http.get("/v1/leases/a%3Ab", params={"q": "1"})
        assert r.json()["path"] == "/v1/leases/a%3Ab?q=1"
        assert r.reason_phrase == "OK"
    assert server.connections == 1
    assert transport.connections_opened == 1


async def test_a_chunked_response_is_decoded() -> None:
    async def chunked(*_: object) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n"
        )

    transport = KeepAliveTransport()
    async with serve(chunked) as server, client(server, transport) as http:
        assert (await http.get("/")).text == "hello, world"
        assert (await http.get("/")).text == "hello, world"  # and the connection is reusable
    assert transport.connections_opened == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    transport = KeepAliveTransport()
    async with serve(echo) as server, client(server, transport) as http:
        assert (await http.get("/a")).status_code == 200
        server.close_idle_connections()
        await asyncio.sleep(0.05)  # the FIN arrives; the event loop tells the connection
        assert (await http.get("/b")).json()["path"] == "/b"
    assert transport.connections_opened == 2


async def test_connection_close_and_expiry_are_not_reused() -> None:
    async def closing(*_: object) -> bytes:
        return ok(b"{}", extra="connection: close\r\n")

    transport = KeepAliveTransport()
    async with serve(closing) as server, client(server, transport) as http:
        await http.get("/")
        await http.get("/")
    assert transport.connections_opened == 2

    expiring = KeepAliveTransport(keepalive_expiry=0.0)
    async with serve(echo) as server, client(server, expiring) as http:
        await http.get("/")
        await http.get("/")
    assert expiring.connections_opened == 2


async def test_a_slow_answer_is_a_read_timeout_and_its_connection_is_dropped() -> None:
    slow = asyncio.Event()

    async def maybe_slow(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if path == "/slow":
            await slow.wait()
        return ok(b"{}")

    transport = KeepAliveTransport()
    async with serve(maybe_slow) as server, client(server, transport, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/slow")
        slow.set()
        assert (await http.get("/fast")).status_code == 200  # never the late reply of /slow
    assert transport.connections_opened == 2


async def test_a_server_gone_mid_response_is_a_protocol_error() -> None:
    async def half(*_: object) -> bytes:
        return b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial'

    async def nothing(*_: object) -> None:
        return None

    for reply in (half, nothing):
        transport = KeepAliveTransport()
        async with serve(reply) as server, client(server, transport) as http:
            task = asyncio.create_task(http.get("/"))
            await asyncio.sleep(0.05)
            server.close_idle_connections()
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await task


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with serve(echo) as server:
        port = server.port
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", transport=KeepAliveTransport()
    ) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_at_most_max_connections_and_a_pool_timeout() -> None:
    release = asyncio.Event()

    async def held(*_: object) -> bytes:
        await release.wait()
        return ok(b"{}")

    transport = KeepAliveTransport(max_connections=2)
    async with serve(held) as server, client(server, transport, timeout=5.0) as http:
        busy = [asyncio.create_task(http.get("/")) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await http.get("/", timeout=httpx.Timeout(5.0, pool=0.1))
        waiting = asyncio.create_task(http.get("/"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        release.set()
        assert [r.status_code for r in await asyncio.gather(*busy, waiting)] == [200] * 3
    assert server.connections == 2


async def test_https_is_refused() -> None:
    async with httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("https://127.0.0.1:1/")
