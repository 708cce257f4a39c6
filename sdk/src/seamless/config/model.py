"""The `seamless` config section: a typed model, YAML loading, `QMTL_SEAMLESS_*` env
overrides (env wins) and the provenance of every value.

Key names and env var names are QMTL's, so an existing QMTL config file and environment
work unchanged. QMTL reads most of these env vars only to export them; we read them for
real. An empty env var counts as unset (compose files often expand `${VAR:-}`).

Every problem is reported as a `ConfigIssue` naming the key, where its value came from
(file, env var or default) and the valid form, so the CLI can print it without a trace.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from seamless.config import safe_yaml
from seamless.errors import ConfigError, ConfigSectionMissing, YamlLimitError

SECTION = "seamless"
DEFAULT_SOURCE = "default"

Profile = Literal["dev", "prod"]
PROFILES: tuple[str, ...] = ("dev", "prod")
FINGERPRINT_MODES: tuple[str, ...] = ("canonical", "legacy")

# key -> env var. The first block is QMTL's; the rest are ours (profile, auth, worker id,
# timeouts) and follow the same prefix.
ENV_VARS: Mapping[str, str] = {
    "coordinator_url": "QMTL_SEAMLESS_COORDINATOR_URL",
    "redis_dsn": "QMTL_SEAMLESS_REDIS_DSN",
    "questdb_dsn": "QMTL_SEAMLESS_QUESTDB_DSN",
    "artifact_endpoint": "QMTL_SEAMLESS_ARTIFACT_ENDPOINT",
    "artifact_bucket": "QMTL_SEAMLESS_ARTIFACT_BUCKET",
    "artifact_access_key": "QMTL_SEAMLESS_ARTIFACT_ACCESS_KEY",
    "artifact_secret_key": "QMTL_SEAMLESS_ARTIFACT_SECRET_KEY",
    "artifacts_enabled": "QMTL_SEAMLESS_ARTIFACTS",
    "artifact_dir": "QMTL_SEAMLESS_ARTIFACT_DIR",
    "fingerprint_mode": "QMTL_SEAMLESS_FP_MODE",
    "publish_fingerprint": "QMTL_SEAMLESS_PUBLISH_FP",
    "preview_fingerprint": "QMTL_SEAMLESS_PREVIEW_FP",
    "early_fingerprint": "QMTL_SEAMLESS_EARLY_FP",
    "sla_preset": "QMTL_SEAMLESS_SLA_PRESET",
    "conformance_preset": "QMTL_SEAMLESS_CONFORMANCE_PRESET",
    "presets_file": "QMTL_SEAMLESS_PRESETS_FILE",
    "profile": "QMTL_SEAMLESS_PROFILE",
    "coordinator_token": "QMTL_SEAMLESS_COORDINATOR_TOKEN",
    "seamless_worker_id": "QMTL_SEAMLESS_WORKER",
    "coordinator_timeout_seconds": "QMTL_SEAMLESS_COORDINATOR_TIMEOUT",
    "health_attempts": "QMTL_SEAMLESS_HEALTH_ATTEMPTS",
    "health_backoff_seconds": "QMTL_SEAMLESS_HEALTH_BACKOFF",
    "health_timeout_seconds": "QMTL_SEAMLESS_HEALTH_TIMEOUT",
    # schema registry governance (seed 004): QMTL's variable names
    "schema_registry_url": "QMTL_SCHEMA_REGISTRY_URL",
    "validation_mode": "QMTL_SCHEMA_VALIDATION_MODE",
    "schema_subject": "QMTL_SEAMLESS_SCHEMA_SUBJECT",
}
ENV_PREFIX = "QMTL_SEAMLESS_"

# Values never echoed back in messages.
SECRET_KEYS: frozenset[str] = frozenset(
    {"coordinator_token", "artifact_access_key", "artifact_secret_key"}
)

# The valid form of each key, quoted in every error about it.
EXPECTED: Mapping[str, str] = {
    "profile": "'dev' or 'prod'",
    "coordinator_url": "an http(s) URL with a host, e.g. http://seamless-coordinator:8080",
    "coordinator_token": "a non-empty string (bearer token)",
    "redis_dsn": "a redis:// or rediss:// URL with a host, e.g. redis://redis:6379/3",
    "questdb_dsn": (
        "a postgresql:// URL with a host, e.g. postgresql://admin:quest@questdb:8812/qdb"
    ),
    "artifact_endpoint": "an http(s) URL with a host, e.g. http://minio:9000",
    "artifact_bucket": (
        "an S3 bucket name: 3-63 chars of a-z, 0-9, '.' and '-', starting and ending "
        "with a letter or digit, e.g. seamless-artifacts"
    ),
    "artifact_access_key": "a non-empty string (the object store access key of this client)",
    "artifact_secret_key": "a non-empty string (the object store secret key of this client)",
    "artifacts_enabled": "a boolean (true/false; env: 1/0)",
    "artifact_dir": "a filesystem path, e.g. /var/lib/qmtl/seamless-artifacts",
    "fingerprint_mode": "one of " + ", ".join(repr(m) for m in FINGERPRINT_MODES),
    "publish_fingerprint": "a boolean (true/false; env: 1/0)",
    "preview_fingerprint": "a boolean (true/false; env: 1/0)",
    "early_fingerprint": "a boolean (true/false; env: 1/0)",
    "sla_preset": "the name of an SLA preset in the presets file, e.g. baseline",
    "conformance_preset": (
        "the name of a conformance preset in the presets file, e.g. strict-blocking"
    ),
    "presets_file": "a path to a presets YAML file (relative paths: to the config file)",
    "seamless_worker_id": "a non-empty string naming this worker",
    "coordinator_timeout_seconds": "a number of seconds > 0, e.g. 2.0",
    "health_attempts": "an integer from 1 to 20, e.g. 3",
    "health_backoff_seconds": "a number of seconds >= 0, e.g. 10",
    "health_timeout_seconds": "a number of seconds > 0, e.g. 5",
    "schema_registry_url": (
        "an http(s) URL of a Confluent-compatible schema registry, e.g. http://schema-registry:8081"
    ),
    "validation_mode": "'canary' or 'strict'",
    "schema_subject": (
        "1-128 characters of letters, digits, '.', '_' and '-', e.g. seamless.bars-60"
    ),
}

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# RFC 1123 labels; '_' too, since Docker/compose service names use it.
_HOST_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
MAX_URL_LENGTH = 2048
MAX_HOSTNAME_LENGTH = 253
MAX_TEXT_LENGTH = 4096
_SHOWN_CHARS = 80


def _check_host(host: str) -> None:
    if len(host) > MAX_HOSTNAME_LENGTH:
        raise ValueError(
            f"the host is {len(host):,} characters long; a host name is at most "
            f"{MAX_HOSTNAME_LENGTH}"
        )
    if ":" in host:  # an IPv6 literal; urlsplit already took it out of its brackets
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"{_shown(host)!r} is not a valid IPv6 address") from None
        return
    labels = host.rstrip(".").split(".")
    bad = next((label for label in labels if not _HOST_LABEL_RE.match(label)), None)
    if bad is not None:
        raise ValueError(
            f"host {_shown(host)!r} is not a valid host name (label {_shown(bad)!r}: "
            "1-63 letters, digits, '-' or '_', not starting or ending with '-')"
        )


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is {len(value):,} characters long; at most {MAX_URL_LENGTH}")
    blank = next((i for i, ch in enumerate(value) if ch.isspace() or not ch.isprintable()), None)
    if blank is not None:
        raise ValueError(
            f"the URL contains a space or control character at position {blank + 1} "
            "(percent-encode it, e.g. %20)"
        )
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"scheme must be {' or '.join(schemes)}, got {parts.scheme or 'none'!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    if not parts.hostname:
        raise ValueError("the URL has no host")
    _check_host(parts.hostname)
    if port == 0:
        raise ValueError("port 0 is not a valid port")
    return value


def check_http_url(value: str) -> str:
    """An http(s) URL with a valid host, bounded; ValueError saying what is wrong."""
    return _check_url(value, ("http", "https"))


def _not_a_bool(value: Any) -> Any:
    """pydantic's lax mode reads `true` as 1; a boolean where a number belongs is a mistake."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a boolean, not a number")
    return value


class SeamlessConfig(BaseModel):
    """The `seamless` section, after env overrides. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = "dev"
    coordinator_url: str | None = None
    coordinator_token: SecretStr | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT_LENGTH
    )
    redis_dsn: str | None = None
    questdb_dsn: str | None = None
    artifact_endpoint: str | None = None
    artifact_bucket: str | None = None
    # The client's own object-store keys (the bundle's `sdkConfig` output carries them);
    # unset: ARTIFACT_ACCESS_KEY / ARTIFACT_SECRET_KEY, else boto3's own chain.
    artifact_access_key: SecretStr | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT_LENGTH
    )
    artifact_secret_key: SecretStr | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT_LENGTH
    )
    artifacts_enabled: bool = False
    artifact_dir: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    fingerprint_mode: Literal["canonical", "legacy"] = "canonical"
    publish_fingerprint: bool = True
    preview_fingerprint: bool = False
    early_fingerprint: bool = False
    sla_preset: str = Field(default="baseline", min_length=1, max_length=128)
    conformance_preset: str = Field(default="strict-blocking", min_length=1, max_length=128)
    presets_file: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    seamless_worker_id: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    coordinator_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    health_attempts: int = Field(default=3, ge=1, le=20)
    health_backoff_seconds: float = Field(default=10.0, ge=0, le=600)
    health_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    schema_registry_url: str | None = None
    validation_mode: Literal["canary", "strict"] = "canary"
    schema_subject: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", max_length=128
    )

    @field_validator(
        "coordinator_timeout_seconds",
        "health_attempts",
        "health_backoff_seconds",
        "health_timeout_seconds",
        mode="before",
    )
    @classmethod
    def _number_not_bool(cls, value: Any) -> Any:
        return _not_a_bool(value)

    @field_validator("coordinator_url", "artifact_endpoint", "schema_registry_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_url(value, ("http", "https")).rstrip("/")

    @field_validator("redis_dsn")
    @classmethod
    def _redis_dsn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_url(value, ("redis", "rediss"))
        path = urlsplit(value).path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"the database after the host must be a number, got {path!r}")
        return value

    @field_validator("questdb_dsn")
    @classmethod
    def _questdb_dsn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_url(value, ("postgresql", "postgres"))

    @field_validator("artifact_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _BUCKET_RE.match(value) or ".." in value:
            raise ValueError("not a valid S3 bucket name")
        return value

    @property
    def token(self) -> str | None:
        return self.coordinator_token.get_secret_value() if self.coordinator_token else None


FIELDS: tuple[str, ...] = tuple(SeamlessConfig.model_fields)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem with one key."""

    key: str
    source: str
    problem: str
    expected: str
    value: str | None = None
    suggestion: str | None = None

    def message(self) -> str:
        shown = f" = {self.value}" if self.value is not None else ""
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        expected = f"; expected {self.expected}" if self.expected else ""
        return f"{SECTION}.{self.key}{shown} (from {self.source}): {self.problem}{hint}{expected}"


@dataclass(frozen=True)
class ResolvedSection:
    """Raw values after env overrides, and where each came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]

    def source_of(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)


def redact(key: str, value: Any) -> str:
    """A value as it may appear in a message: secrets hidden, URL passwords masked, long
    values cut short."""
    if key in SECRET_KEYS:
        return "'***'"
    if isinstance(value, str):
        return repr(_shown(mask_url_password(value)))
    return _shown(repr(value))


def _shown(text: str) -> str:
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}… ({len(text):,} chars)"


def mask_url_password(value: str) -> str:
    """`scheme://user:***@host...`: the password of any URL-like string masked. Works on
    text urlsplit refuses too (bad ports, spaces), since such a value still gets printed."""
    span = _password_span(value)
    if span is None:
        return value
    return f"{value[: span[0]]}***{value[span[1] :]}"


def url_password(value: str) -> str | None:
    """The password part of a URL-like string, if it has one."""
    span = _password_span(value)
    return None if span is None else value[span[0] : span[1]]


def _password_span(value: str) -> tuple[int, int] | None:
    scheme_end = value.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    end = len(value)
    for sep in "/?#":
        found = value.find(sep, start)
        if found >= 0:
            end = min(end, found)
    at = value.rfind("@", start, end)
    colon = value.find(":", start, at) if at >= 0 else -1
    if colon < 0:
        return None
    return colon + 1, at


def suggest(name: str, candidates: tuple[str, ...] | list[str]) -> str | None:
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def resolve_section(
    section: Mapping[str, Any],
    env: Mapping[str, str] | None,
    *,
    source: str = "config",
) -> ResolvedSection:
    """Merge file values with env overrides (env wins) and record each value's source."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in section.items():
        values[str(key)] = value
        sources[str(key)] = source
    for key, var in ENV_VARS.items():
        if env is None:
            break
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        values[key] = raw
        sources[key] = f"env var {var}"
    return ResolvedSection(values=values, sources=sources)


def unknown_env_vars(env: Mapping[str, str] | None) -> list[tuple[str, str | None]]:
    """`QMTL_SEAMLESS_*` variables we do not know, with a did-you-mean for each."""
    if env is None:
        return []
    known = list(ENV_VARS.values())
    return [
        (var, suggest(var, known))
        for var in sorted(env)
        if var.startswith(ENV_PREFIX) and var not in known
    ]


def section_issues(resolved: ResolvedSection) -> list[ConfigIssue]:
    """Schema problems of the section: unknown keys, wrong types, bad URLs/DSNs."""
    try:
        SeamlessConfig.model_validate(dict(resolved.values))
    except ValidationError as exc:
        return _issues_from(exc, resolved)
    return []


def _issues_from(exc: ValidationError, resolved: ResolvedSection) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for error in exc.errors():
        loc = error.get("loc") or ("",)
        key = str(loc[0])
        raw = resolved.values.get(key)
        source = resolved.source_of(key)
        if error["type"] == "extra_forbidden":
            hint = suggest(key, list(FIELDS))
            issues.append(
                ConfigIssue(
                    key=key,
                    source=source,
                    problem="unknown key",
                    expected="one of the known keys: " + ", ".join(FIELDS),
                    suggestion=hint,
                )
            )
            continue
        problem = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        issues.append(
            ConfigIssue(
                key=key,
                source=source,
                problem=problem,
                expected=EXPECTED.get(key, ""),
                value=redact(key, raw),
            )
        )
    return issues


def parse_section(resolved: ResolvedSection) -> SeamlessConfig:
    """The typed section, or ConfigError listing every issue (the first names the key)."""
    try:
        return SeamlessConfig.model_validate(dict(resolved.values))
    except ValidationError as exc:
        issues = _issues_from(exc, resolved)
    raise issues_error(issues)


def issues_error(issues: list[ConfigIssue]) -> ConfigError:
    first = issues[0]
    text = "\n".join(issue.message() for issue in issues)
    return ConfigError(
        text, key=f"{SECTION}.{first.key}", source=first.source, expected=first.expected
    )


# --- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigDocument:
    """A parsed config file: the whole mapping plus its path."""

    path: Path
    data: Mapping[str, Any]

    @property
    def directory(self) -> Path:
        return self.path.parent

    def seamless_section(self) -> dict[str, Any]:
        """The `seamless` section, with QMTL's top-level `profile` and
        `connectors.seamless_worker_id` folded in when the section does not set them."""
        if SECTION not in self.data:
            raise ConfigSectionMissing(
                f"{self.path}: no '{SECTION}' section; add a '{SECTION}:' mapping "
                "(e.g. seamless: {coordinator_url: http://seamless-coordinator:8080})",
                key=SECTION,
                source=str(self.path),
                expected="a mapping of seamless keys",
            )
        raw = self.data[SECTION]
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{SECTION} (from {self.path}): must be a mapping of keys, "
                f"got {type(raw).__name__}; expected e.g. seamless: {{profile: dev}}",
                key=SECTION,
                source=str(self.path),
                expected="a mapping of seamless keys",
            )
        section = dict(raw)
        profile = self.data.get("profile")
        if profile is not None and "profile" not in section:
            section["profile"] = profile
        connectors = self.data.get("connectors")
        if isinstance(connectors, Mapping):
            for key in ("seamless_worker_id", "schema_registry_url"):
                value = connectors.get(key)
                if value is not None and key not in section:
                    section[key] = value
        return section


def _read_bounded(path: Path) -> str:
    """The file's text; OSError past `safe_yaml.MAX_FILE_BYTES` (read no further)."""
    with path.open("rb") as handle:
        raw = handle.read(safe_yaml.MAX_FILE_BYTES + 1)
    if len(raw) > safe_yaml.MAX_FILE_BYTES:
        raise OSError(f"larger than {safe_yaml.MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return raw.decode("utf-8")


def read_document(path: Path) -> ConfigDocument:
    """Read and parse a YAML config file; ConfigError (no trace) on any problem."""
    try:
        text = _read_bounded(path)
    except FileNotFoundError:
        raise ConfigError(
            f"--config {path}: no such file; expected the path of a YAML config file",
            key="--config",
            source=str(path),
            expected="an existing YAML file",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"--config {path}: cannot read it ({exc}); expected a readable UTF-8 YAML file",
            key="--config",
            source=str(path),
            expected="a readable UTF-8 YAML file",
        ) from None
    try:
        data = safe_yaml.load(text)
    except YamlLimitError as exc:
        raise ConfigError(
            f"{exc.path} (from {path}, line {exc.line}): {exc.problem}; expected {exc.expected}",
            key=exc.path,
            source=str(path),
            expected=exc.expected,
        ) from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: not valid YAML{where}: {problem}; expected a YAML mapping such as "
            "'seamless:\\n  profile: dev'",
            key="yaml",
            source=str(path),
            expected="valid YAML",
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, got "
            f"{type(data).__name__}; expected e.g. 'seamless:\\n  profile: dev'",
            key="yaml",
            source=str(path),
            expected="a mapping of sections",
        )
    return ConfigDocument(path=path, data=data)
