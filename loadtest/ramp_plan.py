"""The ramp's arithmetic, apart from locust (importing locust monkey-patches the process)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ramp:
    peak_users: int
    up_s: float
    hold_s: float
    down_s: float

    def __post_init__(self) -> None:
        if self.peak_users < 1 or min(self.up_s, self.hold_s, self.down_s) < 0:
            raise ValueError(
                f"ramp peak_users={self.peak_users}, up={self.up_s}, hold={self.hold_s}, "
                f"down={self.down_s}: expected peak >= 1 and durations >= 0"
            )

    @property
    def duration_s(self) -> float:
        return self.up_s + self.hold_s + self.down_s

    def users_at(self, t: float) -> int | None:
        """Users wanted `t` seconds into the run; None once the ramp is over."""
        if t >= self.duration_s:
            return None
        if t < self.up_s:
            return max(1, round(self.peak_users * t / self.up_s))
        if t < self.up_s + self.hold_s:
            return self.peak_users
        left = self.duration_s - t
        return max(1, round(self.peak_users * left / self.down_s)) if self.down_s else None

    def spawn_rate(self) -> float:
        """Fast enough to follow the steepest slope of the ramp every tick."""
        slopes = [s for s in (self.up_s, self.down_s) if s > 0]
        shortest = min(slopes) if slopes else 1.0
        return max(1.0, 2.0 * self.peak_users / shortest)
