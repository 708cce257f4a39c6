"""Exact-enough latency percentiles per phase, independent of locust's statistics.

Locust rounds response times to whole milliseconds under 100 ms (and coarser above), which
hides everything interesting about a sub-millisecond cache hit. `LatencyHistogram` is an
HDR-style log-linear histogram: every sample lands in a bucket whose width is at most
``1 / 2**SUB_BUCKET_BITS`` (0.4 %) of its value, from 1 µs to hours, in a few kilobytes
however long the run. Histograms merge by adding counts, so workers of a distributed or
multi-process run can ship theirs to the master.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SUB_BUCKET_BITS = 8  # 256 sub-buckets per power of two: <= 0.4 % relative error
_SUB = 1 << SUB_BUCKET_BITS
_UNIT_MS = 0.001  # the smallest distinguished value: 1 µs
PERCENTILES = (50.0, 95.0, 99.0)


def _bucket_of(value_ms: float) -> int:
    fraction, power = math.frexp(max(value_ms / _UNIT_MS, 1.0))  # fraction in [0.5, 1)
    return (power - 1) * _SUB + min(_SUB - 1, int((2.0 * fraction - 1.0) * _SUB))


def _bucket_value(index: int) -> float:
    """The midpoint of bucket `index`, in ms."""
    exponent, sub = divmod(index, _SUB)
    return math.ldexp(1.0 + (sub + 0.5) / _SUB, exponent) * _UNIT_MS


@dataclass
class LatencyHistogram:
    counts: Counter[int] = field(default_factory=Counter)
    count: int = 0
    total_ms: float = 0.0
    min_ms: float = math.inf
    max_ms: float = 0.0

    def record(self, value_ms: float) -> None:
        if not math.isfinite(value_ms) or value_ms < 0:
            raise ValueError(f"latency {value_ms!r} ms: expected a finite value >= 0")
        self.counts[_bucket_of(value_ms)] += 1
        self.count += 1
        self.total_ms += value_ms
        self.min_ms = min(self.min_ms, value_ms)
        self.max_ms = max(self.max_ms, value_ms)

    def merge(self, other: LatencyHistogram) -> None:
        self.counts.update(other.counts)
        self.count += other.count
        self.total_ms += other.total_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, pct: float) -> float:
        """The nearest-rank percentile `pct` (0-100) in ms, clamped to the exact min and max;
        NaN when there are no samples."""
        if not 0.0 <= pct <= 100.0:
            raise ValueError(f"percentile {pct}: expected 0 <= pct <= 100")
        if self.count == 0:
            return math.nan
        # (less a hair: 99.9 / 100 * 20000 is 19980.000000000004 in floating point)
        rank = max(1, math.ceil(pct * self.count / 100.0 - 1e-9))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(max(_bucket_value(index), self.min_ms), self.max_ms)
        return self.max_ms

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.count if self.count else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": {str(k): v for k, v in self.counts.items()},
            "count": self.count,
            "total_ms": self.total_ms,
            "min_ms": self.min_ms if self.count else None,
            "max_ms": self.max_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        hist = cls(
            counts=Counter({int(k): int(v) for k, v in data["counts"].items()}),
            count=int(data["count"]),
            total_ms=float(data["total_ms"]),
            max_ms=float(data["max_ms"]),
        )
        hist.min_ms = math.inf if data["min_ms"] is None else float(data["min_ms"])
        return hist


@dataclass
class PhaseStats:
    """Latencies of the successful requests of one phase, and how many failed."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return self.latency.count + self.failures

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def merge(self, other: PhaseStats) -> None:
        self.latency.merge(other.latency)
        self.failures += other.failures
        self.errors.update(other.errors)


@dataclass
class PhaseRecorder:
    """Per-name statistics (a name is an SLA phase such as ``total`` or a lease operation
    such as ``lease.claim``), fed from locust's ``request`` events."""

    phases: dict[str, PhaseStats] = field(default_factory=dict)
    labels: Counter[str] = field(default_factory=Counter)  # e.g. fetch outcomes by source
    # wall-clock span of the recorded requests (epoch s): the load's duration, without the
    # start-up before the first request
    first_at: float = math.inf
    last_at: float = -math.inf

    def stats(self, name: str) -> PhaseStats:
        return self.phases.setdefault(name, PhaseStats())

    def record(self, name: str, latency_ms: float, error: BaseException | str | None) -> None:
        now = time.time()
        self.first_at = min(self.first_at, now - latency_ms / 1000.0)
        self.last_at = max(self.last_at, now)
        stats = self.stats(name)
        if error is None:
            stats.latency.record(latency_ms)
        else:
            stats.failures += 1
            stats.errors[_error_name(error)] += 1

    def count_label(self, label: str) -> None:
        self.labels[label] += 1

    def merge(self, other: PhaseRecorder) -> None:
        for name, stats in other.phases.items():
            self.stats(name).merge(stats)
        self.labels.update(other.labels)
        self.first_at = min(self.first_at, other.first_at)
        self.last_at = max(self.last_at, other.last_at)

    def duration_s(self) -> float:
        return max(0.0, self.last_at - self.first_at) if self.last_at >= self.first_at else 0.0

    def names(self) -> list[str]:
        return sorted(self.phases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phases": {
                name: {
                    "latency": stats.latency.to_dict(),
                    "failures": stats.failures,
                    "errors": dict(stats.errors),
                }
                for name, stats in self.phases.items()
            },
            "labels": dict(self.labels),
            "first_at": self.first_at if math.isfinite(self.first_at) else None,
            "last_at": self.last_at if math.isfinite(self.last_at) else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseRecorder:
        recorder = cls(labels=Counter({str(k): int(v) for k, v in data["labels"].items()}))
        if data.get("first_at") is not None and data.get("last_at") is not None:
            recorder.first_at, recorder.last_at = float(data["first_at"]), float(data["last_at"])
        for name, raw in data["phases"].items():
            recorder.phases[name] = PhaseStats(
                latency=LatencyHistogram.from_dict(raw["latency"]),
                failures=int(raw["failures"]),
                errors=Counter({str(k): int(v) for k, v in raw["errors"].items()}),
            )
        return recorder

    def summary(self, percentiles: Iterable[float] = PERCENTILES) -> dict[str, dict[str, Any]]:
        """Per phase: requests, failures, failure ratio, mean, min, max and percentiles."""
        wanted = tuple(percentiles)
        out: dict[str, dict[str, Any]] = {}
        for name in self.names():
            stats = self.phases[name]
            hist = stats.latency
            row: dict[str, Any] = {
                "requests": stats.requests,
                "failures": stats.failures,
                "failure_ratio": stats.failure_ratio,
                "mean_ms": _finite(hist.mean_ms),
                "min_ms": _finite(hist.min_ms),
                "max_ms": hist.max_ms if hist.count else None,
                "errors": dict(stats.errors),
            }
            for pct in wanted:
                row[f"p{pct:g}_ms"] = _finite(hist.percentile(pct))
            out[name] = row
        return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _error_name(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        text = str(error).splitlines()[0] if str(error) else ""
        return f"{type(error).__name__}: {text[:120]}".rstrip(": ")
    return error[:160]
