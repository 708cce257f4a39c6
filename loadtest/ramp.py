"""A ramp for the load test: users climb linearly to a peak, hold, then fall back to zero.

Load it next to the locustfile (``-f loadtest/locustfile.py,loadtest/ramp.py``, or the
``ramp.conf`` profile); locust then takes users and run time from this shape. Tune it with
``--ramp-peak-users``, ``--ramp-up-s``, ``--ramp-hold-s`` and ``--ramp-down-s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from locust import LoadTestShape, events


def _options(parser: Any) -> None:
    group = parser.add_argument_group("ramp shape")
    group.add_argument("--ramp-peak-users", type=int, default=120, help="users at the peak")
    group.add_argument("--ramp-up-s", type=float, default=60.0, help="seconds from 0 to peak")
    group.add_argument("--ramp-hold-s", type=float, default=60.0, help="seconds at the peak")
    group.add_argument("--ramp-down-s", type=float, default=20.0, help="seconds back to 0")


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


class RampShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        ramp = Ramp(
            getattr(options, "ramp_peak_users", 120),
            getattr(options, "ramp_up_s", 60.0),
            getattr(options, "ramp_hold_s", 60.0),
            getattr(options, "ramp_down_s", 20.0),
        )
        users = ramp.users_at(self.get_run_time())  # type: ignore[no-untyped-call]
        return None if users is None else (users, ramp.spawn_rate())


# locust's hooks are untyped (its decorator would erase our functions' types under mypy
# --strict), so they are registered through an `Any`.
_hooks: Any = events
_hooks.init_command_line_parser.add_listener(_options)
