"""Every exception the seamless package raises, under one base class.

User mistakes (bad config, bad arguments) carry a message that names the offending key or
argument and the valid form, so the CLI can print it without a stack trace.
"""

from __future__ import annotations


class SeamlessError(Exception):
    """Base of every error raised by the seamless package."""


# --- configuration -------------------------------------------------------------------------


class ConfigError(SeamlessError):
    """A configuration value is missing or invalid.

    ``key`` is the dotted config key, ``source`` where the value came from (a file path,
    an env var name, or ``default``), ``expected`` the valid form.
    """

    def __init__(
        self, message: str, *, key: str = "", source: str = "", expected: str = ""
    ) -> None:
        super().__init__(message)
        self.key = key
        self.source = source
        self.expected = expected


# --- coordinator ---------------------------------------------------------------------------


class CoordinatorError(SeamlessError):
    """Base of errors talking to the backfill coordinator."""


class CoordinatorUnavailable(CoordinatorError):
    """The coordinator could not give an answer: network error, timeout, 5xx, truncated or
    unparsable body. Never to be read as "no lease" (QMTL's silent-skip defect)."""


class LeaseLost(CoordinatorError):
    """The coordinator says our token is no longer the live one (409 stale)."""

    def __init__(self, key: str, token: int, reason: str = "stale") -> None:
        super().__init__(f"lease on {key!r} with token {token} lost: {reason}")
        self.key = key
        self.token = token
        self.reason = reason


class CoordinatorAuthError(CoordinatorError):
    """The coordinator refused our credentials (401/403)."""


class CoordinatorRequestRejected(CoordinatorError):
    """The coordinator rejected a request as malformed (4xx other than 401/403/409/429)."""


# --- data provider (coverage, SLA, conformance, storage, artifacts) ------------------------


class InvalidRequestError(SeamlessError, ValueError):
    """A fetch argument is invalid. ``argument`` names it, ``expected`` gives the valid form;
    nothing stored is touched when this is raised."""

    def __init__(self, argument: str, value: object, expected: str) -> None:
        super().__init__(f"invalid {argument}={value!r}: expected {expected}")
        self.argument = argument
        self.value = value
        self.expected = expected


class SeamlessSLAExceeded(SeamlessError):
    """A request phase ran past its SLA budget under ``on_violation: fail_fast``."""

    def __init__(self, phase: str, node_id: str, elapsed_ms: float, budget_ms: float) -> None:
        super().__init__(
            f"SLA phase {phase!r} for node {node_id!r} took {elapsed_ms:.0f} ms "
            f"(budget {budget_ms:.0f} ms)"
        )
        self.phase = phase
        self.node_id = node_id
        self.elapsed_ms = elapsed_ms
        self.budget_ms = budget_ms


class CoverageUnavailable(SeamlessError):
    """FAIL_FAST: the requested window is not fully held and the strategy may not fill it."""

    def __init__(self, node_id: str, missing: list[tuple[int, int]]) -> None:
        shown = ", ".join(f"[{s}, {e}]" for s, e in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        super().__init__(f"node {node_id!r}: ranges not available: {shown}{more}")
        self.node_id = node_id
        self.missing = missing


class ConformancePipelineError(SeamlessError):
    """The conformance pipeline flagged the frame and ``partial_ok`` is false. ``report``
    is the `seamless.data.conformance.ConformanceReport`."""

    def __init__(self, report: object, message: str) -> None:
        super().__init__(message)
        self.report = report


class StorageError(SeamlessError):
    """The bar store could not be read or written."""


class WriteFenced(StorageError):
    """The store refused a write whose lease token is older than one it has already
    stored bars under for the same span: the writer lost its lease. Final, never retried."""

    def __init__(self, node_id: str, interval: int, token: int, newer: int) -> None:
        super().__init__(
            f"write of node {node_id!r} interval {interval} with lease token {token} refused: "
            f"the store holds bars of that span written under newer token {newer}"
        )
        self.node_id = node_id
        self.interval = interval
        self.token = token
        self.newer = newer


class ArtifactPublishError(SeamlessError):
    """An artifact could not be published to the object store (after retries)."""


class BackfillError(SeamlessError):
    """A backfill shard failed after all its attempts."""


class FetchFailed(SeamlessError):
    """An upstream fetch failed; the backfill retries it (the synthetic fetcher raises it
    for its injected failures)."""


# --- config, validation, coordinator client and factory (SDK part 1) ----------------------


class YamlLimitError(SeamlessError, ValueError):
    """A YAML document breaks a bound (size, depth, aliases, key length). ``path`` is the
    key path (``seamless.redis_dsn``, list items as ``[3]``), cut to 80 characters,
    ``line`` 1-based."""

    def __init__(self, path: str, line: int, problem: str, expected: str) -> None:
        where = path or "top level"
        if len(where) > 80:
            where = where[:80] + "…"
        super().__init__(f"{where} at line {line}: {problem}; expected {expected}")
        self.path = where
        self.line = line
        self.problem = problem
        self.expected = expected


class RedisDsnError(SeamlessError, ValueError):
    """What is wrong with a coordinator `REDIS_DSN` (never quoting its password)."""


class ConfigSectionMissing(ConfigError):
    """The config file has no section for a requested target (`config validate` exit 2)."""


class PresetError(ConfigError):
    """A presets file is unreadable or malformed, or names a preset that does not exist."""


class LeaseNotGranted(SeamlessError):
    """`hold_lease` asked for a key the coordinator would not grant (held, completed or
    parked as failed). Not an outage: the coordinator answered."""

    def __init__(self, key: str, reason: str, lease_until_ms: int | None = None) -> None:
        until = f" until {lease_until_ms} ms" if lease_until_ms is not None else ""
        super().__init__(f"lease on {key!r} not granted: {reason}{until}")
        self.key = key
        self.reason = reason
        self.lease_until_ms = lease_until_ms


class CoordinatorStartupError(CoordinatorUnavailable):
    """Prod start-up stopped: the coordinator never passed its health check within the
    bounded retries. Prod never falls back to an in-memory stub."""


# --- schema registry governance -------------------------------------------------------


class SchemaRegistryError(SeamlessError):
    """The schema registry refused a request or answered something unusable. ``url`` is the
    request's URL (credentials masked), ``status`` the HTTP status when there was one."""

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class SchemaRegistryUnavailable(SchemaRegistryError):
    """The registry could not answer: network error, timeout or a 5xx."""


class SchemaValidationError(ConformancePipelineError):
    """Strict mode: a frame violates its subject's approved schema, or no approved schema
    could be had. A conformance block, so a backfill batch is not stored and its lease is
    failed, as for any other blocking conformance flag."""
