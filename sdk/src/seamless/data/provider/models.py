"""What a fetch takes and gives: the strategy, the result and its metadata, and the
request's validation (every argument checked before anything is read or written)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import polars as pl

from seamless.data.backfill import BackfillReport
from seamless.data.conformance import ConformanceReport
from seamless.data.coverage import Range
from seamless.data.sla import Downgrade
from seamless.errors import InvalidRequestError

NODE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,255}$")
NODE_ID_FORM = (
    "1-256 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
)


class Strategy(StrEnum):
    FAIL_FAST = "fail_fast"
    AUTO_BACKFILL = "auto_backfill"
    PARTIAL_FILL = "partial_fill"
    SEAMLESS = "seamless"


@dataclass
class FetchMetadata:
    node_id: str
    interval: int
    start: int
    end: int
    strategy: Strategy
    coverage: list[Range]
    missing: list[Range]
    requested_bars: int
    served_bars: int
    sources: list[str]
    phase_ms: dict[str, float]
    downgrade: Downgrade | None
    conformance: ConformanceReport
    backfill: BackfillReport | None = None
    lag_seconds: float | None = None
    world_id: str = ""
    as_of: str = ""
    _fingerprint: Callable[[], str] | None = field(default=None, repr=False)
    _fingerprint_value: str | None = field(default=None, repr=False)

    @property
    def coverage_ratio(self) -> float:
        return self.served_bars / self.requested_bars if self.requested_bars else 1.0

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def fingerprint(self) -> str:
        """The canonical dataset fingerprint (``sha256:...``), computed once on demand so a
        caller that never asks does not pay for hashing the frame."""
        if self._fingerprint_value is None:
            assert self._fingerprint is not None
            self._fingerprint_value = self._fingerprint()
        return self._fingerprint_value

    def as_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "interval": self.interval,
            "start": self.start,
            "end": self.end,
            "strategy": self.strategy.value,
            "coverage": [[s, e] for s, e in self.coverage],
            "missing": [[s, e] for s, e in self.missing],
            "coverage_ratio": self.coverage_ratio,
            "sources": list(self.sources),
            "phase_ms": dict(self.phase_ms),
            "downgrade": None
            if self.downgrade is None
            else {"mode": self.downgrade.mode.value, "reasons": list(self.downgrade.reasons)},
            "conformance": self.conformance.as_dict(),
            "lag_seconds": self.lag_seconds,
            "fingerprint": self.fingerprint,
        }


@dataclass
class FetchResult:
    frame: pl.DataFrame
    metadata: FetchMetadata

    @property
    def fingerprint(self) -> str:
        return self.metadata.fingerprint


def validate_request(start: Any, end: Any, node_id: Any, interval: Any) -> None:
    """Raise `InvalidRequestError` naming the first bad argument and its valid form."""
    if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
        raise InvalidRequestError("interval", interval, "a positive integer number of seconds")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequestError(name, value, "a non-negative integer epoch second")
        if value % interval:
            lower = value - value % interval
            raise InvalidRequestError(
                name,
                value,
                f"a multiple of interval={interval} (on the bar grid), e.g. {lower} or "
                f"{lower + interval}",
            )
    if end < start:
        raise InvalidRequestError("end", end, f"end >= start (start={start})")
    if not isinstance(node_id, str) or not NODE_ID_PATTERN.match(node_id):
        raise InvalidRequestError("node_id", node_id, NODE_ID_FORM)
