"""The seamless coordinator as a real process, for integration, chaos and load tests and
the lab: `python -m seamless.cli coordinator serve` on free loopback ports, up when
``GET /healthz`` answers 200 (which needs Redis), its JSON log kept in ``server.log`` and
shown when the start fails.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from lab.servers import LOOPBACK, LocalServer, free_port, http_ok

DEFAULT_CLIENT = "test-client"


class CoordinatorServer(LocalServer):
    name = "coordinator"
    startup_timeout = 30.0

    def __init__(
        self,
        redis_url: str,
        questdb_dsn: str | None = None,
        tokens: Mapping[str, str] | None = None,
        key_prefix: str = "seamless:",
        max_attempts: int = 6,
        host: str = LOOPBACK,
        port: int | None = None,
        *,
        rate_limit: int = 0,
        coordinator_id: str | None = None,
        log_level: str = "info",
        extra_env: Mapping[str, str] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self._fixed_port = port
        super().__init__(workdir)
        self.host = host
        self.redis_url = redis_url
        self.questdb_dsn = questdb_dsn
        self.tokens: dict[str, str] = (
            dict(tokens) if tokens else {DEFAULT_CLIENT: secrets.token_urlsafe(24)}
        )
        self.key_prefix = key_prefix
        self.max_attempts = max_attempts
        self.rate_limit = rate_limit
        self.coordinator_id = coordinator_id or f"coordinator-{secrets.token_hex(3)}"
        self.log_level = log_level
        self.extra_env = dict(extra_env or {})

    def pick_ports(self) -> None:
        self.port = self._fixed_port or free_port()
        self.metrics_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def token(self) -> str:
        """The first client's bearer token."""
        return next(iter(self.tokens.values()))

    def auth_headers(self, client: str | None = None) -> dict[str, str]:
        token = self.tokens[client] if client else self.token
        return {"Authorization": f"Bearer {token}"}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "seamless.cli", "coordinator", "serve"]

    def environment(self) -> dict[str, str]:
        env = {
            "COORDINATOR_ID": self.coordinator_id,
            "BIND_ADDR": f"{self.host}:{self.port}",
            "PROMETHEUS_PORT": str(self.metrics_port),
            "REDIS_DSN": self.redis_url,
            "QUESTDB_DSN": self.questdb_dsn or "",
            "COORDINATOR_TOKENS": json.dumps(self.tokens),
            "COORDINATOR_KEY_PREFIX": self.key_prefix,
            "COORDINATOR_MAX_ATTEMPTS": str(self.max_attempts),
            "COORDINATOR_RATE_LIMIT": str(self.rate_limit),
            "COORDINATOR_CONFIG": "",
            "COORDINATOR_TOKENS_FILE": "",
            "LOG_LEVEL": self.log_level,
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.extra_env)
        return env

    def ready(self) -> bool:
        return http_ok(f"{self.url}/healthz")
