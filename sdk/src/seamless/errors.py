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
