"""A Docker engine for the engine tests: the one already running, or Debian's dockerd
started by `scripts/docker-engine.sh` and stopped again by whoever started it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "docker-engine.sh"


class DockerEngineError(RuntimeError):
    """dockerd could not be started (the message carries the script's reason)."""


@dataclass
class DockerEngine:
    """`start()` reuses an engine that answers, or starts one; `stop()` stops only an
    engine this object started."""

    started: bool = False

    def _script(self, action: str) -> str:
        proc = subprocess.run(
            ["bash", str(SCRIPT), action], capture_output=True, text=True, check=False
        )
        out = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            raise DockerEngineError(out or f"{SCRIPT} {action} exited {proc.returncode}")
        return out

    def start(self) -> DockerEngine:
        out = self._script("start")
        self.started = "started dockerd" in out
        return self

    def stop(self) -> None:
        if self.started:
            self._script("stop")
            self.started = False

    def __enter__(self) -> DockerEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
