"""`config validate --target gateway|dagmanager|worldservice`: the sections the bundle
renders into each QMTL service's config.yml (infra/catalog/), checked like QMTL's own
`qmtl config validate` does — every DSN's form, the ControlBus brokers and topic prefix —
and, unless offline, whether each dependency answers: Redis PING, Postgres ``SELECT 1``,
Neo4j's Bolt handshake, a TCP connect to each Kafka broker.

Passwords never appear: every DSN is shown with its password masked, and errors from the
drivers are scrubbed.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

from seamless.config.model import _check_url, mask_url_password, url_password
from seamless.config.validation import CheckResult, _connect_questdb, _one_line, _ping_redis

SERVICE_TARGETS: tuple[str, ...] = ("gateway", "dagmanager", "worldservice")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_BROKER_RE = re.compile(r"^[A-Za-z0-9._-]{1,253}:\d{1,5}$")
_BOLT_MAGIC = bytes.fromhex("6060B017")
# Bolt versions offered in the handshake: 5.x, 4.4, 4.3, 3.0.
_BOLT_VERSIONS = bytes.fromhex("00000005 00000404 00000403 00000003")

Probe = Callable[[str, float], str]


def is_broker_address(value: object) -> bool:
    """A Kafka bootstrap address as QMTL's services take it: `host:port`."""
    return isinstance(value, str) and _BROKER_RE.match(value.strip()) is not None


class _Checks:
    def __init__(self, target: str, source: str, offline: bool, timeout: float) -> None:
        self.target = target
        self.source = source
        self.offline = offline
        self.timeout = timeout
        self.results: list[CheckResult] = []

    def add(self, severity: str, check: str, hint: str) -> None:
        self.results.append(CheckResult(self.target, check, severity, hint))  # type: ignore[arg-type]

    def error(self, key: str, problem: str, expected: str, value: Any = None) -> None:
        shown = "" if value is None else f" = {_shown(value)}"
        self.add(
            "ERROR",
            key,
            f"{key}{shown} (from {self.source}): {problem}; expected {expected}",
        )

    def url(
        self,
        key: str,
        value: Any,
        schemes: tuple[str, ...],
        expected: str,
        probe: Probe | None,
        *,
        optional: bool = False,
    ) -> None:
        if value is None or value == "":
            if optional:
                self.add("OK", key, "not set (in-memory backend)")
            else:
                self.error(key, "missing", expected)
            return
        if not isinstance(value, str):
            self.error(key, f"must be a string, got {type(value).__name__}", expected)
            return
        try:
            _check_url(value, schemes)
        except ValueError as exc:
            self.error(key, str(exc), expected, value)
            return
        self.reach(key, value, probe)

    def reach(self, key: str, value: str, probe: Probe | None) -> None:
        shown = mask_url_password(value)
        if probe is None:
            self.add("OK", key, f"{shown} (from {self.source})")
        elif self.offline:
            self.add("WARN", key, f"{shown} (from {self.source}): not contacted (offline)")
        else:
            try:
                detail = probe(value, self.timeout)
            except Exception as exc:  # any failure to reach it is the check's result
                self.add("ERROR", key, f"{shown}: unreachable: {_scrub(_one_line(exc), value)}")
            else:
                self.add("OK", key, f"{shown} (from {self.source}): {detail}")

    def brokers(self, key: str, value: Any) -> None:
        expected = "a list (or comma-separated string) of host:port, e.g. [controlbus:9092]"
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.error(key, "missing or empty", expected)
            return
        bad = [b for b in items if not is_broker_address(b)]
        if bad:
            self.error(key, f"not host:port: {_shown(bad[0])}", expected)
            return
        for broker in items:
            self.reach(f"{key} {broker.strip()}", broker.strip(), _tcp_probe)

    def topic(self, key: str, value: Any, prefix: str | None) -> None:
        expected = f"a Kafka topic name under the ControlBus prefix {prefix or ''!r}"
        if not isinstance(value, str) or not _TOPIC_RE.match(value):
            self.error(key, "not a valid topic name", expected, value)
        elif prefix and not value.startswith(prefix):
            self.error(key, f"outside the ControlBus topic prefix {prefix!r}", expected, value)
        else:
            self.add("OK", key, value)

    def port(self, key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            self.error(key, "not a port number", "an integer from 1 to 65535", value)
        else:
            self.add("OK", key, str(value))


def _shown(value: Any) -> str:
    text = mask_url_password(value) if isinstance(value, str) else repr(value)
    return repr(text[:80] + "…") if len(text) > 80 else repr(text)


def _scrub(text: str, raw: str) -> str:
    text = text.replace(raw, mask_url_password(raw))
    password = url_password(raw)
    return text.replace(password, "***") if password else text


def _tcp_probe(address: str, timeout: float) -> str:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout):
        return "TCP connect ok"


def _bolt_probe(dsn: str, timeout: float) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    with socket.create_connection((parts.hostname or "", parts.port or 7687), timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_BOLT_MAGIC + _BOLT_VERSIONS)
        try:
            answer = sock.recv(4)
        except TimeoutError:
            raise ConnectionError(
                f"connected, but no Bolt handshake answer within {timeout:g} s (not Neo4j?)"
            ) from None
    # A Bolt server answers the version it picked, 00 00 minor major; zeros mean none.
    if len(answer) != 4 or answer[:2] != b"\x00\x00" or answer == b"\x00\x00\x00\x00":
        raise ConnectionError("the server did not agree on a Bolt version (not Neo4j?)")
    return f"Bolt handshake ok (version {answer[3]}.{answer[2]})"


def _controlbus(checks: _Checks, document: Mapping[str, Any]) -> str | None:
    bus = document.get("controlbus")
    if not isinstance(bus, Mapping):
        checks.add("WARN", "controlbus", "no controlbus section: topic prefix not checked")
        return None
    prefix = bus.get("topic_prefix")
    if not isinstance(prefix, str) or not prefix.endswith(".") or not _TOPIC_RE.match(prefix):
        checks.error(
            "controlbus.topic_prefix",
            "not a topic prefix ending with '.'",
            "e.g. qmtl.controlbus.",
            prefix,
        )
        prefix = None
    else:
        checks.add("OK", "controlbus.topic_prefix", prefix)
    mechanism = bus.get("sasl_mechanism")
    if mechanism is not None and mechanism not in SASL_MECHANISMS:
        checks.error(
            "controlbus.sasl_mechanism",
            "unknown",
            "one of " + ", ".join(SASL_MECHANISMS),
            mechanism,
        )
    if mechanism is not None and not bus.get("sasl_password"):
        checks.error("controlbus.sasl_password", "missing", "the service's ControlBus password")
    return prefix


def validate_service(
    target: str,
    document: Mapping[str, Any],
    *,
    offline: bool,
    source: str = "config",
    connect_timeout: float = 3.0,
) -> list[CheckResult]:
    """Check `document[target]` (and the controlbus section it uses)."""
    checks = _Checks(target, source, offline, connect_timeout)
    section = document.get(target)
    if not isinstance(section, Mapping):
        kind = "missing" if section is None else f"a {type(section).__name__}, not a mapping"
        checks.add("ERROR", target, f"section {target} {kind} in {source}")
        return checks.results
    prefix = _controlbus(checks, document)
    redis_form = "a redis:// or rediss:// URL, e.g. redis://gateway:pw@redis:6379/1"
    pg_form = "a postgresql:// URL, e.g. postgresql://gateway:pw@postgres:5432/gateway"
    key = f"{target}."
    if target == "gateway":
        checks.url(key + "redis_dsn", section.get("redis_dsn"), ("redis", "rediss"),
                   redis_form, _ping_redis)  # fmt: skip
        backend = section.get("database_backend", "postgres")
        if backend not in ("memory", "postgres", "sqlite"):
            checks.error(key + "database_backend", "unknown", "memory, postgres or sqlite", backend)
        elif backend == "postgres":
            checks.url(key + "database_dsn", section.get("database_dsn"),
                       ("postgresql", "postgres"), pg_form, _connect_questdb)  # fmt: skip
        else:
            checks.add("OK", key + "database_backend", f"{backend} (no database to contact)")
        checks.brokers(key + "controlbus_brokers", section.get("controlbus_brokers"))
        for topic in section.get("controlbus_topics") or []:
            checks.topic(f"{key}controlbus_topics {topic}", topic, prefix)
        checks.url(key + "worldservice_url", section.get("worldservice_url"),
                   ("http", "https"), "an http(s) URL", None)  # fmt: skip
        checks.port(key + "port", section.get("port", 8080))
    elif target == "dagmanager":
        neo4j = section.get("neo4j_dsn")
        checks.url(key + "neo4j_dsn", neo4j, ("bolt", "neo4j", "bolt+s", "neo4j+s"),
                   "a bolt:// or neo4j:// URL, e.g. bolt://neo4j:7687", _bolt_probe,
                   optional=True)  # fmt: skip
        if neo4j and not section.get("neo4j_password"):
            checks.error(key + "neo4j_password", "missing", "the Neo4j password")
        checks.url(key + "redis_dsn", section.get("redis_dsn"), ("redis", "rediss"),
                   redis_form, _ping_redis)  # fmt: skip
        checks.brokers(key + "kafka_dsn", section.get("kafka_dsn"))
        if section.get("controlbus_dsn") != section.get("kafka_dsn"):
            checks.brokers(key + "controlbus_dsn", section.get("controlbus_dsn"))
        checks.topic(key + "controlbus_queue_topic", section.get("controlbus_queue_topic"), prefix)
        checks.port(key + "grpc_port", section.get("grpc_port", 50051))
        checks.port(key + "http_port", section.get("http_port", 8101))
    elif target == "worldservice":
        dsn = section.get("dsn")
        if isinstance(dsn, str) and dsn.startswith("sqlite:"):
            checks.add("OK", key + "dsn", f"{dsn} (local SQLite file)")
        else:
            checks.url(key + "dsn", dsn, ("postgresql", "postgres"), pg_form, _connect_questdb)
        checks.url(key + "redis", section.get("redis"), ("redis", "rediss"), redis_form,
                   _ping_redis)  # fmt: skip
        bind = section.get("bind")
        if isinstance(bind, Mapping):
            checks.port(key + "bind.port", bind.get("port", 8443))
    else:
        raise ValueError(f"unknown target {target!r}: expected one of {SERVICE_TARGETS}")
    return checks.results
