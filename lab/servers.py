"""Real servers as local processes, for the tests and the lab.

Each server starts on free loopback ports in its own temporary directory, is considered up
only when it answers a real request (Redis PING, QuestDB ``SELECT 1`` over the PostgreSQL
wire, MinIO ``/minio/health/live``, toxiproxy ``GET /version``), and is stopped and its
directory removed on exit. mirakuru owns the processes: it polls the readiness check with a
deadline, kills the whole process group on stop, and reaps leftovers at interpreter exit.
The server's output goes to ``server.log`` in its directory; a failed start raises
`ServerStartError` carrying the log's tail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import psycopg
import redis
from mirakuru import Executor
from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = Path(os.environ.get("SEAMLESS_TOOLS_DIR", REPO_ROOT / ".tools"))
LOOPBACK = "127.0.0.1"
_START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def tool_path(*parts: str) -> Path:
    path = TOOLS_DIR.joinpath(*parts)
    if not path.exists():
        raise ServerStartError(f"{path} is missing: run `make bootstrap` first")
    return path


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class _ReadinessExecutor(Executor):
    """A mirakuru executor whose readiness is any callable (a real request to the server)."""

    def __init__(self, command: list[str], ready: Callable[[], bool], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self._ready = ready

    def pre_start_check(self) -> bool:
        return False  # ports are fresh, nothing else can be answering on them

    def after_start_check(self) -> bool:
        return self._ready()


class LocalServer(ABC):
    """One server process on loopback ports in a temporary directory."""

    name: str = "server"
    startup_timeout: float = 60.0
    stop_exit_code: int | None = None  # None: the POSIX -SIGTERM

    def __init__(self, workdir: Path | None = None) -> None:
        self.host = LOOPBACK
        self._owns_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"seamless-{self.name}-"))
        self.log_path = self.workdir / "server.log"
        self._executor: _ReadinessExecutor | None = None
        self._log: IO[bytes] | None = None
        self.pick_ports()

    # --- what each server defines --------------------------------------------------------
    @abstractmethod
    def pick_ports(self) -> None:
        """Choose free ports for every listener of the server."""

    @abstractmethod
    def command(self) -> list[str]: ...

    def environment(self) -> dict[str, str]:
        return {}

    @abstractmethod
    def ready(self) -> bool:
        """One real request to the server; True when it answered as a ready server does."""

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._executor is not None and self._executor.running()

    @property
    def pid(self) -> int:
        """The server process's id (to read its memory use or CPU time)."""
        assert self._executor is not None and self._executor.process is not None, "not running"
        return self._executor.process.pid

    def start(self) -> Self:
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._start_once()
                return self
            except ServerStartError:
                port_taken = "address already in use" in self.log_tail().lower()
                if not port_taken or attempt == _START_ATTEMPTS:
                    raise
                self.pick_ports()
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        self._log = self.log_path.open("ab")
        env = {**os.environ, **self.environment()}
        self._executor = _ReadinessExecutor(
            self.command(),
            self.ready,
            cwd=str(self.workdir),
            timeout=self.startup_timeout,
            envvars=env,
            expected_returncode=self.stop_exit_code,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._executor.start()
        except (TimeoutExpired, ProcessExitedWithError) as exc:
            self._executor.kill()
            self._close_log()
            raise ServerStartError(
                f"{self.name} did not become ready ({exc.__class__.__name__}); "
                f"log {self.log_path}:\n{self.log_tail()}"
            ) from None

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.stop()
            self._executor = None
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self._executor is not None:
            self._executor.kill()
            self._executor = None
        self._close_log()

    def restart(self) -> None:
        """Stop and start again on the same ports and directory."""
        self.stop()
        self._start_once()

    def cleanup(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


class RedisServer(LocalServer):
    """redis-server with no persistence: a restart comes back empty, like a lost node."""

    name = "redis"
    startup_timeout = 20.0

    def pick_ports(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        return [
            str(tool_path("bin", "redis-server")),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            # One short try per check: mirakuru does the polling, so no client-side retries.
            client = redis.Redis(
                host=self.host, port=self.port, socket_timeout=1, retry=Retry(NoBackoff(), 0)
            )
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False


class QuestDBServer(LocalServer):
    """The QuestDB server jar from Maven Central, run as a Java module."""

    name = "questdb"
    startup_timeout = 90.0
    # The JVM exits with 128 + SIGTERM after running its shutdown hooks.
    stop_exit_code = 128 + signal.SIGTERM
    user = "admin"
    password = "quest"
    database = "qdb"

    def pick_ports(self) -> None:
        self.http_port = free_port()
        self.pg_port = free_port()
        self.ilp_port = free_port()
        self.min_http_port = free_port()

    @property
    def pg_dsn(self) -> str:
        return (
            f"postgresql://{self.user}:{self.password}@{self.host}:{self.pg_port}/{self.database}"
        )

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def ilp_http_conf(self) -> str:
        """Connection string for the `questdb` ILP client over HTTP."""
        return f"http::addr={self.host}:{self.http_port};"

    @property
    def ilp_tcp_conf(self) -> str:
        return f"tcp::addr={self.host}:{self.ilp_port};"

    def command(self) -> list[str]:
        return [
            "java",
            # QuestDB sizes its heap from the machine by default; tests share 2 cores.
            "-Xms128m", "-Xmx768m",
            "-p", str(tool_path("questdb", "questdb.jar")),
            "-m", "io.questdb/io.questdb.ServerMain",
            "-d", str(self.workdir / "root"),
        ]  # fmt: skip

    def _start_once(self) -> None:
        (self.workdir / "root").mkdir(exist_ok=True)
        super()._start_once()

    def environment(self) -> dict[str, str]:
        return {
            "QDB_HTTP_BIND_TO": f"{self.host}:{self.http_port}",
            "QDB_HTTP_MIN_NET_BIND_TO": f"{self.host}:{self.min_http_port}",
            "QDB_PG_NET_BIND_TO": f"{self.host}:{self.pg_port}",
            "QDB_LINE_TCP_NET_BIND_TO": f"{self.host}:{self.ilp_port}",
            "QDB_LINE_UDP_ENABLED": "false",
            "QDB_TELEMETRY_ENABLED": "false",
            "QDB_SHARED_WORKER_COUNT": "2",
        }

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.pg_dsn, connect_timeout=2, autocommit=True) as conn:
                row = conn.execute("SELECT 1").fetchone()
                return row is not None and row[0] == 1
        except psycopg.Error:
            return False


class MinioServer(LocalServer):
    """MinIO built from source by `go install`, with generated root credentials."""

    name = "minio"
    startup_timeout = 60.0

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.access_key = "seamless-root"
        self.secret_key = secrets.token_urlsafe(24)

    def pick_ports(self) -> None:
        self.port = free_port()
        self.console_port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            str(tool_path("bin", "minio")),
            "server", str(self.workdir / "data"),
            "--address", f"{self.host}:{self.port}",
            "--console-address", f"{self.host}:{self.console_port}",
            "--quiet",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        return {
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
        }

    def ready(self) -> bool:
        return http_ok(f"{self.endpoint}/minio/health/live") and http_ok(
            f"{self.endpoint}/minio/health/ready"
        )


class ToxiproxyServer(LocalServer):
    """The toxiproxy server; proxies it creates listen on further free loopback ports."""

    name = "toxiproxy"
    startup_timeout = 20.0

    def pick_ports(self) -> None:
        self.port = free_port()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            str(tool_path("bin", "toxiproxy-server")),
            "-host", self.host,
            "-port", str(self.port),
        ]  # fmt: skip

    def ready(self) -> bool:
        return http_ok(f"{self.api_url}/version")
