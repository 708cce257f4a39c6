"""Server processes for the SDK client's integration tests: the real coordinator service
(`seamless coordinator serve`) on the session's Redis, and a protocol-speaking server double
(coordinator_double.py) that injects wire faults on demand. Fixtures are in conftest.py."""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import httpx

from lab.servers import LocalServer, free_port, http_ok

DOUBLE_SCRIPT = Path(__file__).with_name("coordinator_double.py")


def _seamless_cli() -> str:
    found = Path(sys.executable).with_name("seamless")
    return str(found) if found.exists() else (shutil.which("seamless") or "seamless")


class CoordinatorDouble(LocalServer):
    name = "coordinator-double"
    startup_timeout = 30.0

    def __init__(self) -> None:
        self.token = "double-token-" + secrets.token_hex(8)
        super().__init__()

    def pick_ports(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, str(DOUBLE_SCRIPT), str(self.port), self.token]

    def ready(self) -> bool:
        return http_ok(f"{self.url}/_stats")

    # --- control ---------------------------------------------------------------------------
    def fault(self, route: str, mode: str, times: int = 1, retry_after: Any = None) -> None:
        body = {"route": route, "mode": mode, "times": times, "retry_after": retry_after}
        httpx.post(f"{self.url}/_faults", json=body, timeout=5).raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_reset", timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_stats", timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


class RealCoordinator(LocalServer):
    """The coordinator service of issue 4, as its own process."""

    name = "seamless-coordinator"
    startup_timeout = 60.0

    def __init__(self, redis_url: str, **settings: str) -> None:
        self.redis_url = redis_url
        self.token = "sdk-client-token-" + secrets.token_hex(12)
        self.prefix = f"sdk-it-{secrets.token_hex(4)}:"
        self.settings = settings
        super().__init__()

    def pick_ports(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [_seamless_cli(), "coordinator", "serve"]

    def environment(self) -> dict[str, str]:
        return {
            "REDIS_DSN": self.redis_url,
            "BIND_ADDR": f"{self.host}:{self.port}",
            "PROMETHEUS_PORT": "0",
            "COORDINATOR_TOKENS": f"sdk-client={self.token}",
            "COORDINATOR_KEY_PREFIX": self.prefix,
            "COORDINATOR_MAX_ATTEMPTS": "2",
            "COORDINATOR_SWEEP_INTERVAL_MS": "200",
            "COORDINATOR_CONFIG": "",
            **self.settings,
        }

    def ready(self) -> bool:
        return http_ok(f"{self.url}/healthz")
