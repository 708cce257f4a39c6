"""Shared test configuration. Server fixtures live in lab/fixtures.py (registered by the root
conftest.py so chaos/ and loadtest/ share them): add new process fixtures there."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI: more examples, no deadline (2 shared cores make per-example timing noisy), and a
# derandomized run so a failure reproduces; locally: quicker feedback.
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
