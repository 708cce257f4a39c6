"""Run a load profile as a locust subprocess and read back the gate's report.

Locust monkey-patches the whole process with gevent at import, so the tests and the lab
never import it: they start ``python -m locust --config loadtest/profiles/NAME.conf`` with a
target file and read the JSON report the gate writes on quit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


def profile_path(name: str) -> Path:
    path = PROFILES_DIR / f"{name}.conf"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.conf")))
        raise ValueError(f"load profile {name!r}: no {path}; expected one of {known}")
    return path


@dataclass(frozen=True)
class LoadRun:
    exit_code: int
    report: dict[str, Any] | None  # None when locust died before the gate wrote it
    output: str
    command: list[str]

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and self.report is not None and self.report["gate"]["passed"]


def locust_command(
    profile: str,
    target_file: Path,
    report_path: Path,
    *,
    run_time: str | None = None,
    users: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "--config",
        str(profile_path(profile)),
        "--target-file",
        str(target_file),
        "--phase-report",
        str(report_path),
    ]
    if run_time is not None:
        command += ["--run-time", run_time]
    if users is not None:
        command += ["--users", str(users), "--spawn-rate", str(users)]
    return command + list(extra)


def run_profile(
    profile: str,
    target_file: Path,
    report_path: Path,
    *,
    run_time: str | None = None,
    users: int | None = None,
    extra: Sequence[str] = (),
    timeout_s: float = 600.0,
    stream: bool = False,
) -> LoadRun:
    """Run `profile` against the target; `stream` echoes locust's output as it comes."""
    command = locust_command(
        profile, target_file, report_path, run_time=run_time, users=users, extra=extra
    )
    report_path.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    lines: list[str] = []
    with subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        output = process.stdout
        assert output is not None

        def pump() -> None:
            for line in output:
                lines.append(line)
                if stream:
                    sys.stdout.write(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            exit_code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            exit_code = process.wait()
            lines.append(f"\nload run killed after {timeout_s:.0f} s\n")
        reader.join(timeout=5)
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return LoadRun(exit_code, report, "".join(lines), command)
