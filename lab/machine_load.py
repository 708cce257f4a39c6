"""The machine's load while a run goes on, for the reports: a failure on a machine whose CPUs
were oversubscribed reads differently from one on a quiet machine."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self


@dataclass
class LoadSummary:
    cpus: int
    samples: list[float] = field(default_factory=list)  # 1-minute load averages

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else 0.0

    def describe(self) -> str:
        if not self.samples:
            return f"{self.cpus} CPUs; no load sample"
        return (
            f"{self.cpus} CPUs; 1-minute load average mean {self.mean:.1f}, peak {self.peak:.1f} "
            f"({self.peak / self.cpus:.1f}x the CPUs) over {len(self.samples)} samples"
        )


class LoadSampler:
    """Samples the 1-minute load average every `interval` seconds in a daemon thread."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.summary = LoadSummary(cpus=os.cpu_count() or 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.summary.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.summary.samples.append(os.getloadavg()[0])
