"""A ramp for the load test: users climb linearly to a peak, hold, then fall back to zero.

Load it next to the locustfile (``-f loadtest/locustfile.py,loadtest/ramp.py``, or the
``ramp.conf`` profile); locust then takes users and run time from this shape. Tune it with
``--ramp-peak-users``, ``--ramp-up-s``, ``--ramp-hold-s`` and ``--ramp-down-s``.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape, events

from loadtest.ramp_plan import Ramp


def _options(parser: Any) -> None:
    group = parser.add_argument_group("ramp shape")
    group.add_argument("--ramp-peak-users", type=int, default=120, help="users at the peak")
    group.add_argument("--ramp-up-s", type=float, default=60.0, help="seconds from 0 to peak")
    group.add_argument("--ramp-hold-s", type=float, default=60.0, help="seconds at the peak")
    group.add_argument("--ramp-down-s", type=float, default=20.0, help="seconds back to 0")


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
