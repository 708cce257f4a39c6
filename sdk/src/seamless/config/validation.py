"""`config validate` checks as plain functions on values, so the CLI (on a YAML file) and
the Pulumi program (on stack config) run exactly the same rules.

Each check yields one `CheckResult` line: `target  check  OK|WARN|ERROR  hint`. Schema
problems name the key, the value's source and the valid form. Profile rules follow QMTL:
prod needs a coordinator and the data plane (Redis, QuestDB, artifact store) and checks
each for real; dev tolerates their absence with a warning. `offline` turns connectivity
checks into warnings without contacting anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from seamless.config.model import (
    ENV_VARS,
    EXPECTED,
    SECTION,
    ResolvedSection,
    SeamlessConfig,
    mask_url_password,
    resolve_section,
    section_issues,
    suggest,
    unknown_env_vars,
    url_password,
)
from seamless.config.presets import load_presets, preset_issues
from seamless.coordination.health import HealthPolicy, check_health_sync
from seamless.errors import CoordinatorError

Severity = Literal["OK", "WARN", "ERROR"]
SEVERITIES: tuple[Severity, ...] = ("OK", "WARN", "ERROR")

SCHEMA_TARGET = "schema"
SEAMLESS_TARGET = "seamless"

# Top-level sections of a QMTL config file. Others are reported as warnings (with a
# did-you-mean), not errors: QMTL may grow sections this tool does not know.
KNOWN_SECTIONS: tuple[str, ...] = (
    "profile",
    "project",
    "gateway",
    "dagmanager",
    "worldservice",
    "seamless",
    "connectors",
    "telemetry",
    "cache",
    "runtime",
    "test",
    "controlbus",
)

PROD_REQUIRED: tuple[str, ...] = (
    "coordinator_url",
    "redis_dsn",
    "questdb_dsn",
    "artifact_endpoint",
    "artifact_bucket",
)

DEFAULT_CONNECT_TIMEOUT = 3.0
AUTH_PROBE_KEY = "seamless:config-validate:auth-probe"
MINIO_HEALTH_PATH = "/minio/health/live"


@dataclass(frozen=True)
class CheckResult:
    target: str
    check: str
    severity: Literal["OK", "WARN", "ERROR"]
    hint: str


# --- public entry points -------------------------------------------------------------------


def validate_seamless(
    section: Mapping[str, Any],
    *,
    offline: bool,
    env: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
    source: str = "config",
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> list[CheckResult]:
    """Schema + profile rules + connectivity checks on a `seamless` section.

    `env` overrides section values (env wins) when given; `source` labels values that came
    from `section` (a file path, "stack config", ...); `config_dir` anchors a relative
    `presets_file`. Connectivity checks become WARN when `offline`.
    """
    return _SeamlessValidation(
        section,
        offline=offline,
        env=env,
        config_dir=config_dir,
        source=source,
        connect_timeout=connect_timeout,
    ).run()


def validate_schema(
    document: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
    source: str = "config",
) -> list[CheckResult]:
    """Static checks on a whole config document: sections, and the `seamless` section's
    keys, types, URL/DSN forms and preset names. Contacts nothing."""
    results: list[CheckResult] = []
    unknown = [str(name) for name in document if str(name) not in KNOWN_SECTIONS]
    for name in unknown:
        hint = suggest(name, list(KNOWN_SECTIONS))
        mean = f"; did you mean {hint!r}?" if hint else ""
        results.append(
            _warn(
                SCHEMA_TARGET,
                f"section {name}",
                f"unknown top-level section {name!r} in {source}{mean}; known sections: "
                + ", ".join(KNOWN_SECTIONS),
            )
        )
    profile = document.get("profile")
    raw = document.get(SECTION)
    if SECTION not in document:
        results.append(_warn(SCHEMA_TARGET, SECTION, f"no '{SECTION}' section in {source}"))
        return results
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        results.append(
            _error(
                SCHEMA_TARGET,
                SECTION,
                f"{SECTION} (from {source}) must be a mapping of keys, got "
                f"{type(raw).__name__}; expected e.g. 'seamless: {{profile: dev}}'",
            )
        )
        return results
    section = dict(raw)
    if profile is not None and "profile" not in section:
        section["profile"] = profile
    resolved = resolve_section(section, env, source=source)
    static = _static_results(SCHEMA_TARGET, resolved, env, config_dir)
    results.extend(static)
    if not any(r.severity == "ERROR" for r in static):
        results.append(
            CheckResult(
                SCHEMA_TARGET,
                SECTION,
                "OK",
                f"{len(resolved.values)} key(s) valid; presets resolve",
            )
        )
    return results


def format_results(results: Sequence[CheckResult]) -> str:
    """One line per check, columns aligned: `target  check  OK|WARN|ERROR  hint`."""
    if not results:
        return ""
    target_width = max(len(r.target) for r in results)
    check_width = max(len(r.check) for r in results)
    lines = [
        f"{r.target:<{target_width}}  {r.check:<{check_width}}  {r.severity:<5}  {r.hint}"
        for r in results
    ]
    return "\n".join(line.rstrip() for line in lines)


def results_as_json(results: Sequence[CheckResult]) -> dict[str, Any]:
    """`{"status": "ok|error", "results": {target: {check: {severity, hint}}}}`."""
    grouped: dict[str, dict[str, dict[str, str]]] = {}
    for r in results:
        grouped.setdefault(r.target, {})[r.check] = {"severity": r.severity, "hint": r.hint}
    return {"status": overall_status(results), "results": grouped}


def overall_status(results: Sequence[CheckResult]) -> Literal["ok", "error"]:
    return "error" if any(r.severity == "ERROR" for r in results) else "ok"


def first_error_message(results: Sequence[CheckResult]) -> str | None:
    """The first ERROR as one line (`target.check: hint`), or None if there is none."""
    for r in results:
        if r.severity == "ERROR":
            return f"{r.target}.{r.check}: {r.hint}"
    return None


# --- the seamless target -------------------------------------------------------------------


def _ok(target: str, check: str, hint: str) -> CheckResult:
    return CheckResult(target, check, "OK", hint)


def _warn(target: str, check: str, hint: str) -> CheckResult:
    return CheckResult(target, check, "WARN", hint)


def _error(target: str, check: str, hint: str) -> CheckResult:
    return CheckResult(target, check, "ERROR", hint)


def _static_results(
    target: str,
    resolved: ResolvedSection,
    env: Mapping[str, str] | None,
    config_dir: Path | None,
) -> list[CheckResult]:
    """Unknown keys, wrong types, bad URLs/DSNs, unknown env vars, dangling presets."""
    results = [_error(target, issue.key, issue.message()) for issue in section_issues(resolved)]
    for var, hint in unknown_env_vars(env):
        mean = f"; did you mean {hint}?" if hint else ""
        results.append(_warn(target, f"env {var}", f"unknown variable {var} is ignored{mean}"))
    settings = _valid_part(resolved, {r.check for r in results})
    for issue in preset_issues(settings, resolved, config_dir):
        results.append(_error(target, issue.key, issue.message()))
    return results


def _valid_part(resolved: ResolvedSection, bad_keys: set[str]) -> SeamlessConfig:
    """The section without its invalid keys, so later rules can still run on the rest."""
    good = {k: v for k, v in resolved.values.items() if k not in bad_keys}
    return SeamlessConfig.model_validate(good)


class _SeamlessValidation:
    def __init__(
        self,
        section: Mapping[str, Any],
        *,
        offline: bool,
        env: Mapping[str, str] | None,
        config_dir: Path | None,
        source: str,
        connect_timeout: float,
    ) -> None:
        self.section = section
        self.offline = offline
        self.env = env
        self.config_dir = config_dir
        self.source = source
        self.connect_timeout = connect_timeout
        self.results: list[CheckResult] = []

    def run(self) -> list[CheckResult]:
        if not isinstance(self.section, Mapping):
            return [
                _error(
                    SEAMLESS_TARGET,
                    SECTION,
                    f"{SECTION} (from {self.source}) must be a mapping of keys, got "
                    f"{type(self.section).__name__}",
                )
            ]
        resolved = resolve_section(self.section, self.env, source=self.source)
        static = _static_results(SEAMLESS_TARGET, resolved, self.env, self.config_dir)
        bad = {r.check for r in static if r.severity == "ERROR"}
        settings = _valid_part(resolved, bad)
        prod = settings.profile == "prod"
        self.results.extend(static)
        if "profile" not in bad:
            self.results.append(
                _ok(
                    SEAMLESS_TARGET,
                    "profile",
                    f"{settings.profile} (from {resolved.source_of('profile')})",
                )
            )
        self._presets(settings, resolved, bad)
        for key in ("coordinator_url", "redis_dsn", "questdb_dsn", "artifact_endpoint"):
            if key in bad:
                continue
            value = getattr(settings, key)
            if value is None:
                self.results.append(self._missing(key, prod, resolved))
            elif key != "coordinator_url":
                self.results.append(self._connectivity(key, value, resolved))
            else:
                self.results.append(
                    _ok(
                        SEAMLESS_TARGET,
                        key,
                        f"{mask_url_password(value)} (from {resolved.source_of(key)})",
                    )
                )
                health = self._health(settings, prod)
                self.results.append(health)
                if health.severity == "OK":
                    self.results.append(self._auth(settings, prod))
        if "artifact_bucket" not in bad:
            if settings.artifact_bucket is None:
                self.results.append(self._missing("artifact_bucket", prod, resolved))
            else:
                self.results.append(
                    _ok(
                        SEAMLESS_TARGET,
                        "artifact_bucket",
                        f"{settings.artifact_bucket} "
                        f"(from {resolved.source_of('artifact_bucket')})",
                    )
                )
        return self.results

    def _presets(self, settings: SeamlessConfig, resolved: ResolvedSection, bad: set[str]) -> None:
        if bad & {"presets_file", "sla_preset", "conformance_preset"}:
            return
        presets = load_presets(settings.presets_file, self.config_dir)
        for key in ("sla_preset", "conformance_preset"):
            self.results.append(
                _ok(
                    SEAMLESS_TARGET,
                    key,
                    f"{getattr(settings, key)} (from {resolved.source_of(key)}; "
                    f"defined in {presets.origin})",
                )
            )

    def _missing(self, key: str, prod: bool, resolved: ResolvedSection) -> CheckResult:
        where = f"set {SECTION}.{key} in {self.source}"
        if self.env is not None:
            where += f" or env var {ENV_VARS[key]}"
        if prod:
            return _error(
                SEAMLESS_TARGET,
                key,
                f"Prod profile requires {SECTION}.{key}: {where}; expected {EXPECTED[key]}",
            )
        if key == "coordinator_url":
            return _warn(
                SEAMLESS_TARGET,
                key,
                "not set: dev profile falls back to the in-memory coordinator (leases are "
                f"not shared between processes); {where} to use a real one",
            )
        return _ok(SEAMLESS_TARGET, key, "not set (optional in the dev profile)")

    def _connectivity(self, key: str, value: str, resolved: ResolvedSection) -> CheckResult:
        shown = mask_url_password(value)
        origin = f"from {resolved.source_of(key)}"
        if self.offline:
            return _warn(SEAMLESS_TARGET, key, f"{shown} ({origin}): not contacted (offline)")
        probe: Callable[[str, float], str] = _PROBES[key]
        try:
            detail = probe(value, self.connect_timeout)
        except Exception as exc:  # any failure to reach the server is the check's result
            return _error(
                SEAMLESS_TARGET,
                key,
                f"{shown} ({origin}): unreachable: {_scrub(_one_line(exc), value)}",
            )
        return _ok(SEAMLESS_TARGET, key, f"{shown} ({origin}): {detail}")

    def _health(self, settings: SeamlessConfig, prod: bool) -> CheckResult:
        raw = settings.coordinator_url or ""
        url = mask_url_password(raw)
        if self.offline:
            return _warn(SEAMLESS_TARGET, "health", f"GET {url}/healthz: not contacted (offline)")
        # Prod gets the start-up retries; dev only needs to know if it works now.
        policy = HealthPolicy(
            attempts=settings.health_attempts if prod else 1,
            backoff_seconds=settings.health_backoff_seconds,
            timeout_seconds=settings.health_timeout_seconds,
        )
        try:
            attempts = check_health_sync(raw, policy, settings.token)
        except CoordinatorError as exc:
            tried = f" after {policy.attempts} attempt(s)"
            hint = f"{_scrub(_one_line(exc), raw)}{tried}"
            if prod:
                return _error(SEAMLESS_TARGET, "health", hint + "; prod start-up would fail")
            return _warn(
                SEAMLESS_TARGET,
                "health",
                hint + "; dev start-up would fall back to the in-memory coordinator",
            )
        return _ok(SEAMLESS_TARGET, "health", f"GET {url}/healthz ok (attempt {attempts})")

    def _auth(self, settings: SeamlessConfig, prod: bool) -> CheckResult:
        """/healthz is public, so check the token on an authenticated read-only route."""
        raw = f"{settings.coordinator_url}/v1/leases/{quote(AUTH_PROBE_KEY, safe='')}"
        url = mask_url_password(raw)
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
        where = "coordinator_token" if settings.token else "no coordinator_token"
        try:
            response = httpx.get(raw, headers=headers, timeout=settings.health_timeout_seconds)
        except httpx.HTTPError as exc:
            return _warn(SEAMLESS_TARGET, "auth", f"GET {url}: {_scrub(_one_line(exc), raw)}")
        if response.status_code in (401, 403):
            hint = (
                f"the coordinator refused {where} (HTTP {response.status_code}); set "
                f"{SECTION}.coordinator_token or env var {ENV_VARS['coordinator_token']} to "
                "a token the coordinator accepts"
            )
            return (
                _error(SEAMLESS_TARGET, "auth", hint)
                if prod
                else _warn(SEAMLESS_TARGET, "auth", hint)
            )
        if response.status_code != 200:
            return _warn(
                SEAMLESS_TARGET,
                "auth",
                f"GET {url} answered HTTP {response.status_code}; token not verified",
            )
        return _ok(SEAMLESS_TARGET, "auth", f"{where} accepted")


def _scrub(text: str, raw_url: str) -> str:
    """`text` (an error from a client library) with the URL's password masked, whether
    the library quoted the whole URL or only the password."""
    text = text.replace(raw_url, mask_url_password(raw_url))
    password = url_password(raw_url)
    return text.replace(password, "***") if password else text


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# --- connectivity probes: each returns a short detail or raises ----------------------------


def _ping_redis(dsn: str, timeout: float) -> str:
    import redis

    client = redis.Redis.from_url(dsn, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return "PING ok"


def _connect_questdb(dsn: str, timeout: float) -> str:
    import psycopg

    # libpq's connect_timeout is whole seconds and treats values below 2 as 2.
    with (
        psycopg.connect(dsn, connect_timeout=max(2, round(timeout)), autocommit=True) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "connected over the PostgreSQL wire (SELECT 1)"


def _minio_live(endpoint: str, timeout: float) -> str:
    url = endpoint.rstrip("/") + MINIO_HEALTH_PATH
    response = httpx.get(url, timeout=timeout)
    if response.status_code != 200:
        raise ConnectionError(f"GET {url} answered HTTP {response.status_code}")
    return f"GET {MINIO_HEALTH_PATH} 200"


_PROBES: Mapping[str, Callable[[str, float], str]] = {
    "redis_dsn": _ping_redis,
    "questdb_dsn": _connect_questdb,
    "artifact_endpoint": _minio_live,
}
