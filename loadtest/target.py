"""Where a load run sends its traffic: the coordinator and the stores, by URL and DSN.

A target file is JSON or YAML in one of two shapes:

- the outputs of a Pulumi stack, ``pulumi stack output --json --show-secrets > out.json``
  (the bundle exports ``sdkConfig: {"seamless": {...}}``);
- an SDK config file, ``{"seamless": {"coordinator_url": ..., "questdb_dsn": ..., ...}}``
  (what the lab and the tests write for the local data plane).

`QMTL_SEAMLESS_*` environment variables override the file, as they do for the SDK, and
``questdb_ilp`` (env ``SEAMLESS_LOAD_QUESTDB_ILP``) names QuestDB's ILP endpoint as a
``questdb`` client string; without it, ILP over HTTP on QuestDB's default port 9000 of the
DSN's host is assumed. A missing or malformed value raises `ConfigError` naming the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from seamless.errors import ConfigError

QUESTDB_HTTP_DEFAULT_PORT = 9000
_ENV = {
    "coordinator_url": "QMTL_SEAMLESS_COORDINATOR_URL",
    "coordinator_token": "QMTL_SEAMLESS_COORDINATOR_TOKEN",
    "questdb_dsn": "QMTL_SEAMLESS_QUESTDB_DSN",
    "redis_dsn": "QMTL_SEAMLESS_REDIS_DSN",
    "questdb_ilp": "SEAMLESS_LOAD_QUESTDB_ILP",
}
_FORMS = {
    "coordinator_url": "an http(s):// URL of the seamless coordinator",
    "coordinator_token": "the coordinator bearer token of this client",
    "questdb_dsn": "postgresql://user:password@host:port/db (QuestDB's PostgreSQL wire)",
    "questdb_ilp": "a questdb client string such as http::addr=host:9000;",
}


@dataclass(frozen=True)
class LoadTarget:
    coordinator_url: str
    coordinator_token: str = field(repr=False)
    questdb_dsn: str = field(repr=False)
    questdb_ilp: str
    redis_dsn: str | None = field(default=None, repr=False)

    def to_file_dict(self) -> dict[str, Any]:
        section: dict[str, Any] = {
            "coordinator_url": self.coordinator_url,
            "coordinator_token": self.coordinator_token,
            "questdb_dsn": self.questdb_dsn,
            "questdb_ilp": self.questdb_ilp,
        }
        if self.redis_dsn:
            section["redis_dsn"] = self.redis_dsn
        return {"seamless": section}

    def write(self, path: Path) -> Path:
        """Write the target as a private file (it holds a token)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.to_file_dict(), handle)
        return path


def _section(data: Any, origin: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _error("top level", origin, "the file must hold a mapping")
    # hostSdkConfig (Docker stacks): the same config with endpoints on 127.0.0.1 ports.
    for outputs_key in ("hostSdkConfig", "sdkConfig", "sdk_config"):
        if outputs_key in data:
            data = data[outputs_key]
            if not isinstance(data, Mapping):
                raise _error(outputs_key, origin, "expected the bundle's generated SDK config")
            break
    section = data.get("seamless", data)
    if not isinstance(section, Mapping):
        raise _error("seamless", origin, "expected a mapping of seamless config keys")
    return section


def _error(key: str, source: str, problem: str) -> ConfigError:
    expected = _FORMS.get(key, "a Pulumi stack output JSON or a {seamless: {...}} config file")
    return ConfigError(
        f"load target {key} ({source}): {problem}; expected {expected}",
        key=key,
        source=source,
        expected=expected,
    )


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _error("target_file", str(path), f"cannot read it ({exc.strerror})") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError):
        raise _error("target_file", str(path), "not valid JSON/YAML") from None


def load_target(path: Path | None, env: Mapping[str, str] | None = None) -> LoadTarget:
    """The target from `path` (optional) overridden by the environment."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        for key, value in _section(_read(path), str(path)).items():
            values[key] = value
            sources[key] = str(path)
    for key, var in _ENV.items():
        if env.get(var):
            values[key] = env[var]
            sources[key] = f"env {var}"

    def required(key: str) -> str:
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            where = sources.get(key, f"not in the target file nor env {_ENV[key]}")
            raise _error(key, where, "missing or empty")
        return value.strip()

    url = required("coordinator_url")
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
        raise _error("coordinator_url", sources["coordinator_url"], f"{url!r} is not a URL")
    dsn = required("questdb_dsn")
    parsed = urlparse(dsn)
    if parsed.scheme not in ("postgresql", "postgres") or not parsed.hostname:
        raise _error("questdb_dsn", sources["questdb_dsn"], "not a postgresql:// DSN")
    ilp = values.get("questdb_ilp") or f"http::addr={parsed.hostname}:{QUESTDB_HTTP_DEFAULT_PORT};"
    if not isinstance(ilp, str) or "::addr=" not in ilp:
        raise _error("questdb_ilp", sources.get("questdb_ilp", "default"), f"{ilp!r}")
    redis = values.get("redis_dsn")
    return LoadTarget(
        coordinator_url=url,
        coordinator_token=required("coordinator_token"),
        questdb_dsn=dsn,
        questdb_ilp=ilp,
        redis_dsn=redis if isinstance(redis, str) else None,
    )
