"""`seamless coordinator serve` refuses bad settings with one line naming the key."""

from __future__ import annotations

import pytest
from seamless.cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.unit


def test_bad_settings_exit_2_naming_the_key_without_a_traceback() -> None:
    env = {
        "REDIS_DSN": "redis://127.0.0.1:6379/0",
        "COORDINATOR_TOKENS": "sdk=this-is-a-long-secret-token",
        "PROMETHEUS_PORT": "ninety",
        "COORDINATOR_CONFIG": "",
    }
    result = CliRunner().invoke(app, ["coordinator", "serve"], env=env)
    assert result.exit_code == 2
    assert "PROMETHEUS_PORT" in result.output and "not an integer" in result.output
    assert "Traceback" not in result.output
    assert "this-is-a-long-secret-token" not in result.output
