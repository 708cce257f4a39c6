"""The coordinator's settings: environment variables over an optional YAML/JSON file.

Names follow QMTL's compose file (COORDINATOR_ID, BIND_ADDR, PROMETHEUS_PORT, REDIS_DSN,
QUESTDB_DSN, ARTIFACT_*); the service's own settings use a ``COORDINATOR_`` prefix. A file
may spell a key in upper or lower case. Everything is checked at start-up and a bad value
raises `ConfigError` naming the key, where it came from and the valid form. Client tokens
are kept as `SecretStr` so they never reach a log or a repr.

Client tokens and roles: COORDINATOR_TOKENS (a JSON object) and COORDINATOR_TOKENS_FILE (a
YAML/JSON mapping) map each client id to either its token (the client is a `worker`) or
``{"token": "...", "roles": ["worker", "operator"]}``. The inline form
``id=token,id2=token2`` names workers only. A `worker` claims leases (and renews, completes
and fails its own); an `operator` may also force a recovery (release a live lease, reopen
a completed key). Reading and unforced recovery need no role beyond a valid token.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from pydantic import SecretStr

from seamless.coordinator import redis_dsn
from seamless.coordinator.metrics import DEFAULT_MAX_SERIES
from seamless.coordinator.store import DEFAULT_PARTITIONS
from seamless.errors import ConfigError, RedisDsnError

_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TABLE_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MIN_TOKEN_LENGTH = 16

WORKER = "worker"
OPERATOR = "operator"
ROLES = (WORKER, OPERATOR)
_TOKEN_FORM = (
    "each client id maps to a token string (a worker) or to "
    '{"token": "<token>", "roles": [<one or more of worker, operator>]}'
)

# env var -> (description of the valid form) for every recognised key.
KNOWN_KEYS: dict[str, str] = {
    "COORDINATOR_ID": "a non-empty name for this replica (default: the host name)",
    "BIND_ADDR": "HOST:PORT to serve HTTP on, e.g. 0.0.0.0:8080",
    "PROMETHEUS_PORT": "a port 0-65535 for the metrics endpoint (0 disables it)",
    "REDIS_DSN": redis_dsn.FORMS,
    "COORDINATOR_REDIS_PARTITIONS": "an integer 1-1024: hash-tagged partitions the lease keys "
    "spread over (Redis Cluster slots); fixed for the life of a deployment",
    "COORDINATOR_REDIS_MIN_REPLICAS": "an integer 0-16: replicas that must acknowledge each "
    "state change (WAIT) before it is answered; single server or Sentinel only",
    "COORDINATOR_REDIS_REPLICA_TIMEOUT_MS": "an integer 10-60000: how long a state change "
    "waits for those replicas before it answers 503",
    "QUESTDB_DSN": "postgresql://user:password@host:port/db (QuestDB's PG wire), or empty",
    "ARTIFACT_ENDPOINT": "an http(s):// URL, or empty",
    "ARTIFACT_BUCKET": "an S3 bucket name, or empty",
    "ARTIFACT_ACCESS_KEY": "an access key id, or empty",
    "ARTIFACT_SECRET_KEY": "a secret key, or empty",
    "COORDINATOR_KEY_PREFIX": "1-64 characters of [A-Za-z0-9_.:-], e.g. seamless:",
    "COORDINATOR_MAX_ATTEMPTS": "an integer 1-1000: claims of one key before it is parked",
    "COORDINATOR_RATE_LIMIT": "requests per second per worker identity, 0 disables",
    "COORDINATOR_TOKENS": "a JSON object in which "
    + _TOKEN_FORM
    + ", or 'id=token,id2=token2' (workers only)",
    "COORDINATOR_TOKENS_FILE": "path to a YAML/JSON mapping in which " + _TOKEN_FORM,
    "COORDINATOR_LEDGER_PREFIX": "table name prefix for the QuestDB ledger, e.g. seamless_",
    "COORDINATOR_LEDGER_BUFFER": "an integer >= 1: ledger rows kept while QuestDB is down",
    "COORDINATOR_COMPLETED_RETENTION_S": "seconds a completed key is remembered, 0 = forever",
    "COORDINATOR_SWEEP_INTERVAL_MS": "an integer 50-60000: how often expired leases are swept",
    "COORDINATOR_MAX_METRIC_SERIES": "an integer 1-100000: series each metric family labelled "
    "by lease keys keeps (counters count the rest under node_id=_other)",
    "COORDINATOR_CONFIG": "path of the YAML/JSON settings file",
    "LOG_LEVEL": "one of debug, info, warning, error",
}


@dataclass(frozen=True)
class CoordinatorSettings:
    redis_dsn: str
    tokens: Mapping[str, SecretStr]  # client identity -> bearer token
    # client identity -> its roles; a client not named here is a worker (the token form).
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    coordinator_id: str = field(default_factory=socket.gethostname)
    host: str = "0.0.0.0"
    port: int = 8080
    prometheus_port: int = 9102
    questdb_dsn: str | None = None
    artifact_endpoint: str | None = None
    artifact_bucket: str | None = None
    artifact_access_key: SecretStr | None = None
    artifact_secret_key: SecretStr | None = None
    key_prefix: str = "seamless:"
    redis_partitions: int = DEFAULT_PARTITIONS
    redis_min_replicas: int = 0
    redis_replica_timeout_ms: int = 1000
    max_attempts: int = 6
    rate_limit: int = 0
    ledger_prefix: str = "seamless_"
    ledger_buffer: int = 10_000
    completed_retention_s: int = 0
    sweep_interval_ms: int = 1000
    # Series of each metric family labelled by lease keys (metrics.py).
    max_metric_series: int = DEFAULT_MAX_SERIES
    log_level: str = "info"

    def roles_of(self, client: str) -> frozenset[str]:
        return self.roles.get(client, frozenset({WORKER}))

    @property
    def ledger_table(self) -> str:
        return f"{self.ledger_prefix}backfill_ledger"

    def __repr__(self) -> str:  # never print DSN passwords or tokens
        return (
            f"CoordinatorSettings(coordinator_id={self.coordinator_id!r}, "
            f"bind={self.host}:{self.port}, clients={sorted(self.tokens)!r})"
        )


def _fail(key: str, source: str, problem: str) -> ConfigError:
    expected = KNOWN_KEYS.get(key, "")
    return ConfigError(
        f"{key} ({source}): {problem}; expected {expected}",
        key=key,
        source=source,
        expected=expected,
    )


def _read_mapping(path: Path, key: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(key, str(path), f"cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError:
        raise _fail(key, str(path), "the file is not valid YAML or JSON") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _fail(key, str(path), "the file must hold a mapping")
    return {str(k): v for k, v in data.items()}


def _int_value(raw: str, key: str, source: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise _fail(key, source, f"{raw!r} is not an integer") from None
    if not low <= value <= high:
        raise _fail(key, source, f"{value} is out of range {low}..{high}")
    return value


def _bind_addr(raw: str, source: str) -> tuple[str, int]:
    host, sep, port = raw.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise _fail("BIND_ADDR", source, f"{raw!r} has no HOST:PORT form")
    return host, _int_value(port, "BIND_ADDR", source, 1, 65535)


def _dsn(raw: str, key: str, source: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(raw.strip())
    if parsed.scheme not in schemes:
        raise _fail(key, source, f"scheme {parsed.scheme or '(none)'!r} is not one of {schemes}")
    if parsed.scheme != "unix" and not parsed.hostname:
        raise _fail(key, source, "the DSN names no host")
    return raw.strip()


def _entry(value: Any, ident: str, key: str, source: str) -> tuple[Any, frozenset[str]]:
    """(token, roles) of one client's entry: a token string, or {token, roles}."""
    if not isinstance(value, dict):
        return value, frozenset({WORKER})
    unknown = sorted(str(k) for k in value if k not in ("token", "roles"))
    if unknown:
        raise _fail(key, source, f"client {ident!r} has unknown field(s) {', '.join(unknown)}")
    if "token" not in value:
        raise _fail(key, source, f"client {ident!r} has no token")
    roles = value.get("roles")
    if not isinstance(roles, list) or not roles:
        raise _fail(key, source, f"client {ident!r} needs a non-empty list of roles")
    bad = sorted({str(r) for r in roles if r not in ROLES})
    if bad:
        raise _fail(
            key,
            source,
            f"client {ident!r} has unknown role(s) {', '.join(map(repr, bad))} "
            f"(roles are {', '.join(ROLES)})",
        )
    return value["token"], frozenset(roles)


def _parse_tokens(
    raw: Any, key: str, source: str
) -> tuple[dict[str, SecretStr], dict[str, frozenset[str]]]:
    pairs: dict[str, Any]
    if isinstance(raw, dict):
        pairs = raw
    else:
        text = str(raw).strip()
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError:
                raise _fail(key, source, "the value is not a valid JSON object") from None
            if not isinstance(loaded, dict):
                raise _fail(key, source, "the value is not a JSON object")
            pairs = loaded
        else:
            pairs = {}
            for item in filter(None, (part.strip() for part in text.split(","))):
                ident, sep, token = item.partition("=")
                if not sep:
                    raise _fail(key, source, "an entry has no 'id=token' form")
                pairs[ident.strip()] = token.strip()
    tokens: dict[str, SecretStr] = {}
    roles: dict[str, frozenset[str]] = {}
    for ident, value in pairs.items():
        if not _IDENTITY.match(str(ident)):
            raise _fail(key, source, f"client id {str(ident)!r} is not [A-Za-z0-9_.@-], 1-64 long")
        token, roles[str(ident)] = _entry(value, str(ident), key, source)
        if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
            # Never echo the token itself.
            raise _fail(
                key,
                source,
                f"the token of client {ident!r} must be a string of at least "
                f"{MIN_TOKEN_LENGTH} characters",
            )
        if any(c.isspace() for c in token):
            raise _fail(key, source, f"the token of client {ident!r} contains whitespace")
        tokens[str(ident)] = SecretStr(token)
    _check_unshared(tokens, key, source)
    return tokens, roles


def _check_unshared(tokens: Mapping[str, SecretStr], key: str, source: str) -> None:
    # A token names one client: shared, the guard could not tell whose lease a request is.
    seen: dict[str, str] = {}
    for ident, secret in tokens.items():
        other = seen.setdefault(secret.get_secret_value(), ident)
        if other != ident:
            raise _fail(key, source, f"clients {other!r} and {ident!r} share one token")


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None
) -> CoordinatorSettings:
    """Read the file (if any: `config_file` or COORDINATOR_CONFIG), then the environment."""
    env = os.environ if env is None else env
    raw: dict[str, tuple[Any, str]] = {}
    path = config_file or (
        Path(env["COORDINATOR_CONFIG"]) if env.get("COORDINATOR_CONFIG") else None
    )
    if path is not None:
        for name, value in _read_mapping(path, "COORDINATOR_CONFIG").items():
            upper = name.upper()
            if upper not in KNOWN_KEYS:
                raise ConfigError(
                    f"{name} ({path}): unknown setting; valid settings: {', '.join(KNOWN_KEYS)}",
                    key=name,
                    source=str(path),
                    expected=", ".join(KNOWN_KEYS),
                )
            raw[upper] = (value, str(path))
    for name in KNOWN_KEYS:
        if name in env:
            raw[name] = (env[name], f"env {name}")

    def text(name: str) -> tuple[str | None, str]:
        value, source = raw.get(name, (None, "default"))
        if value is None:
            return None, source
        if isinstance(value, dict | list):
            raise _fail(name, source, "expected a scalar value")
        stripped = str(value).strip()
        return (stripped or None), source

    values: dict[str, Any] = {}

    redis_text, source = text("REDIS_DSN")
    if redis_text is None:
        raise _fail("REDIS_DSN", source, "the setting is required")
    try:
        target = redis_dsn.parse(redis_text)
    except RedisDsnError as exc:
        raise _fail("REDIS_DSN", source, str(exc)) from None
    values["redis_dsn"] = target.dsn

    questdb, source = text("QUESTDB_DSN")
    if questdb is not None:
        values["questdb_dsn"] = _dsn(questdb, "QUESTDB_DSN", source, ("postgresql", "postgres"))

    ident, source = text("COORDINATOR_ID")
    if ident is not None:
        if len(ident) > 128 or any(ord(c) < 32 for c in ident):
            raise _fail("COORDINATOR_ID", source, "too long or contains control characters")
        values["coordinator_id"] = ident

    bind, source = text("BIND_ADDR")
    if bind is not None:
        values["host"], values["port"] = _bind_addr(bind, source)

    int_settings = {
        "PROMETHEUS_PORT": ("prometheus_port", 0, 65535),
        "COORDINATOR_MAX_ATTEMPTS": ("max_attempts", 1, 1000),
        "COORDINATOR_RATE_LIMIT": ("rate_limit", 0, 10_000_000),
        "COORDINATOR_LEDGER_BUFFER": ("ledger_buffer", 1, 10_000_000),
        "COORDINATOR_COMPLETED_RETENTION_S": ("completed_retention_s", 0, 10 * 365 * 86400),
        "COORDINATOR_SWEEP_INTERVAL_MS": ("sweep_interval_ms", 50, 60_000),
        "COORDINATOR_MAX_METRIC_SERIES": ("max_metric_series", 1, 100_000),
        "COORDINATOR_REDIS_PARTITIONS": ("redis_partitions", 1, 1024),
        "COORDINATOR_REDIS_MIN_REPLICAS": ("redis_min_replicas", 0, 16),
        "COORDINATOR_REDIS_REPLICA_TIMEOUT_MS": ("redis_replica_timeout_ms", 10, 60_000),
    }
    for name, (attr, low, high) in int_settings.items():
        value, source = text(name)
        if value is not None:
            values[attr] = _int_value(value, name, source, low, high)

    if values.get("redis_min_replicas") and target.topology == "cluster":
        raise _fail(
            "COORDINATOR_REDIS_MIN_REPLICAS",
            raw.get("COORDINATOR_REDIS_MIN_REPLICAS", (None, "default"))[1],
            "WAIT cannot follow a script to its slot's node in a Redis Cluster; "
            "use 0 with a redis+cluster:// DSN",
        )

    prefix, source = text("COORDINATOR_KEY_PREFIX")
    if prefix is not None:
        if not _PREFIX.match(prefix):
            raise _fail("COORDINATOR_KEY_PREFIX", source, f"{prefix!r} has invalid characters")
        values["key_prefix"] = prefix

    ledger_prefix, source = text("COORDINATOR_LEDGER_PREFIX")
    if ledger_prefix is not None:
        if not _TABLE_PREFIX.match(ledger_prefix):
            raise _fail("COORDINATOR_LEDGER_PREFIX", source, f"{ledger_prefix!r} is not a name")
        values["ledger_prefix"] = ledger_prefix

    level, source = text("LOG_LEVEL")
    if level is not None:
        if level.lower() not in ("debug", "info", "warning", "error"):
            raise _fail("LOG_LEVEL", source, f"{level!r} is not a level")
        values["log_level"] = level.lower()

    endpoint, source = text("ARTIFACT_ENDPOINT")
    if endpoint is not None:
        values["artifact_endpoint"] = _dsn(endpoint, "ARTIFACT_ENDPOINT", source, ("http", "https"))
    bucket, source = text("ARTIFACT_BUCKET")
    if bucket is not None:
        if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            raise _fail("ARTIFACT_BUCKET", source, f"{bucket!r} is not a valid bucket name")
        values["artifact_bucket"] = bucket
    for name, attr in (
        ("ARTIFACT_ACCESS_KEY", "artifact_access_key"),
        ("ARTIFACT_SECRET_KEY", "artifact_secret_key"),
    ):
        secret, _ = text(name)
        if secret is not None:
            values[attr] = SecretStr(secret)

    tokens: dict[str, SecretStr] = {}
    roles: dict[str, frozenset[str]] = {}
    file_value, file_source = text("COORDINATOR_TOKENS_FILE")
    if file_value is not None:
        file_tokens, file_roles = _parse_tokens(
            _read_mapping(Path(file_value), "COORDINATOR_TOKENS_FILE"),
            "COORDINATOR_TOKENS_FILE",
            file_value,
        )
        tokens.update(file_tokens)
        roles.update(file_roles)
    inline, inline_source = raw.get("COORDINATOR_TOKENS", (None, "default"))
    if inline is not None and str(inline).strip():
        # An inline entry replaces the file's entry of the same client, token and roles.
        inline_tokens, inline_roles = _parse_tokens(inline, "COORDINATOR_TOKENS", inline_source)
        tokens.update(inline_tokens)
        roles.update(inline_roles)
        _check_unshared(tokens, "COORDINATOR_TOKENS", inline_source)
    if not tokens:
        raise _fail(
            "COORDINATOR_TOKENS",
            inline_source if inline is not None else file_source,
            "no client token configured (set COORDINATOR_TOKENS or COORDINATOR_TOKENS_FILE); "
            "every lease route requires a bearer token",
        )
    values["tokens"] = tokens
    values["roles"] = roles
    return CoordinatorSettings(**values)
