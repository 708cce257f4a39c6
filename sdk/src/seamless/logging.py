"""Structured JSON logs for the data provider.

Every provider and backfill event binds the request's identity — ``node_id, interval, start,
end`` — and, under a lease, ``lease_key`` and ``token``, so one grep follows a shard from
claim to completion across processes. Event names follow QMTL's (``seamless.backfill.*``,
``seamless.sla.*``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

REQUEST_FIELDS = ("node_id", "interval", "start", "end", "lease_key", "token")


def configure_logging(level: int | str = "INFO", stream: TextIO | None = None) -> None:
    """Render structlog events as one JSON object per line on `stream` (stderr)."""
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream if stream is not None else sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "seamless", **bound: Any) -> Any:
    """A structlog logger named `name` with `bound` fields attached."""
    return structlog.get_logger(name).bind(logger=name, **bound)
