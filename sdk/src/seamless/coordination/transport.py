"""A lean HTTP/1.1 keep-alive transport for httpx, for small request and response bodies.

httpx's default pool (httpcore) re-examines every pooled connection on every request:
``has_expired`` polls each idle socket for readability, idle connections are counted once
per idle connection (quadratic), and each operation asks sniffio which event loop runs.
With the ~20 connections a busy SDK process keeps to the coordinator, that scan was the
largest single cost of a lease call (~20 % of the process's CPU under the bench load).

This transport keeps idle connections on a stack: a request takes the most recently used
one whose server has not closed it (the event loop tells the connection's protocol when
the peer closes, so checking is a flag read, no system call) and gives it back when the
response has been read. It speaks plain-TCP HTTP/1.1 with Content-Length or chunked
responses and reads the whole response body before returning, so it suits JSON APIs
(the coordinator), not large downloads. Errors are httpx's (`httpx.ConnectError`,
`httpx.ReadTimeout`, `httpx.RemoteProtocolError`, ...), so callers handle them as before.
"""

from __future__ import annotations

import asyncio
import time

import httpx

_MAX_HEAD_BYTES = 64 * 1024


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """``max_connections`` open at once (a request beyond waits, up to its pool timeout);
    an idle connection unused for ``keepalive_expiry`` seconds is closed."""

    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 15.0) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections={max_connections}: expected >= 1")
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False
        self.connections_opened = 0  # for tests and metrics: how often a new one was needed

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(
                f"KeepAliveTransport speaks plain http, not {url.scheme!r}", request=request
            )
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        head = _request_head(request)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        await _acquire(self._slots, timeouts.get("pool"), request)
        conn: _Connection | None = None
        try:
            conn = self._take_idle()
            if conn is None:
                conn = await self._open(request, timeouts.get("connect"))
            status, reason, headers, content, reusable = await conn.exchange(
                head + body, request, timeouts.get("read"), head_only=request.method == "HEAD"
            )
        except BaseException:
            if conn is not None:
                conn.close()  # its state is unknown (cancelled or failed mid-exchange)
            raise
        finally:
            self._slots.release()
        if reusable and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return httpx.Response(
            status,
            headers=headers,
            content=content,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.close()
        return None

    async def _open(self, request: httpx.Request, timeout: float | None) -> _Connection:
        host = request.url.host
        port = request.url.port or 80
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(_Connection, host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"connect to {host}:{port} timed out", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        self.connections_opened += 1
        return protocol

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


async def _acquire(slots: asyncio.Semaphore, timeout: float | None, request: httpx.Request) -> None:
    if not slots.locked():
        await slots.acquire()
        return
    try:
        async with asyncio.timeout(timeout):
            await slots.acquire()
    except TimeoutError:
        raise httpx.PoolTimeout(
            "no connection free within the pool timeout", request=request
        ) from None


def _request_head(request: httpx.Request) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    lines += [name + b": " + value + b"\r\n" for name, value in request.headers.raw]
    lines.append(b"\r\n")
    return b"".join(lines)


class _Connection(asyncio.Protocol):
    """One TCP connection; the event loop feeds it bytes and tells it when the peer left."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.peer_closed = False  # EOF or connection lost
        self.lost: Exception | None = None
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.peer_closed = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer_closed = True
        self.lost = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- use ------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Open, and nothing unread from the server (an idle connection gets no bytes)."""
        return (
            not self.peer_closed
            and not self.buffer
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.peer_closed = True

    async def exchange(
        self, data: bytes, request: httpx.Request, read_timeout: float | None, *, head_only: bool
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bool]:
        """Send one request, read one response: (status, reason, headers, body, reusable)."""
        assert self.transport is not None
        self.transport.write(data)
        end = await self._read_until(b"\r\n\r\n", request, read_timeout)
        status, reason, headers = _parse_head(bytes(self.buffer[:end]), request)
        del self.buffer[: end + 4]
        fields = {name.lower(): value for name, value in headers}
        keep_alive = fields.get(b"connection", b"").lower() != b"close"
        if head_only or status in (204, 304) or 100 <= status < 200:
            return status, reason, headers, b"", keep_alive
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            body = await self._read_chunked(request, read_timeout)
        elif b"content-length" in fields:
            try:
                length = int(fields[b"content-length"])
            except ValueError:
                raise httpx.RemoteProtocolError(
                    "malformed Content-Length", request=request
                ) from None
            await self._read_exactly(length, request, read_timeout)
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
        else:  # delimited by the server closing the connection
            while not self.peer_closed:
                await self._wait(request, read_timeout)
            body, keep_alive = bytes(self.buffer), False
            self.buffer.clear()
        return status, reason, headers, body, keep_alive and not self.peer_closed

    async def _read_until(
        self, marker: bytes, request: httpx.Request, timeout: float | None
    ) -> int:
        start = 0
        while True:
            at = self.buffer.find(marker, start)
            if at >= 0:
                return at
            if len(self.buffer) > _MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("response head too large", request=request)
            start = max(0, len(self.buffer) - len(marker) + 1)
            if self.peer_closed:
                raise self._disconnected(request)
            await self._wait(request, timeout)

    async def _read_exactly(
        self, length: int, request: httpx.Request, timeout: float | None
    ) -> None:
        while len(self.buffer) < length:
            if self.peer_closed:
                raise self._disconnected(request)
            await self._wait(request, timeout)

    async def _read_chunked(self, request: httpx.Request, timeout: float | None) -> bytes:
        body = bytearray()
        while True:
            end = await self._read_until(b"\r\n", request, timeout)
            size_text = bytes(self.buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise httpx.RemoteProtocolError("malformed chunk size", request=request) from None
            del self.buffer[: end + 2]
            if size == 0:  # trailers (ignored) end with an empty line
                while True:
                    end = await self._read_until(b"\r\n", request, timeout)
                    del self.buffer[: end + 2]
                    if end == 0:
                        return bytes(body)
            await self._read_exactly(size + 2, request, timeout)
            body += self.buffer[:size]
            del self.buffer[: size + 2]

    async def _wait(self, request: httpx.Request, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        handle = loop.call_later(timeout, _expire, waiter, request) if timeout is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()

    def _disconnected(self, request: httpx.Request) -> httpx.HTTPError:
        if self.lost is not None:
            return httpx.ReadError(f"{type(self.lost).__name__}: {self.lost}", request=request)
        return httpx.RemoteProtocolError(
            "Server disconnected without sending a complete response.", request=request
        )


def _expire(waiter: asyncio.Future[None], request: httpx.Request) -> None:
    if not waiter.done():
        waiter.set_exception(
            httpx.ReadTimeout("timed out waiting for the response", request=request)
        )


def _parse_head(
    head: bytes, request: httpx.Request
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise httpx.RemoteProtocolError(
            f"not an HTTP/1.x response: {lines[0][:80]!r}", request=request
        )
    try:
        status = int(parts[1])
    except ValueError:
        raise httpx.RemoteProtocolError(
            f"bad status line {lines[0][:80]!r}", request=request
        ) from None
    reason = parts[2] if len(parts) > 2 else b""
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}", request=request)
        headers.append((name.strip(), value.strip()))
    return status, reason, headers
