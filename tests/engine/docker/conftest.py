"""One partial stack per session, shared by every module here: the engine tests
(test_partial_stack.py), the load gate (test_load_gate_on_stack.py) and the chaos scenarios
(test_chaos_on_stack.py). Bringing the stack up takes 30+ s, so it happens once.

Isolation: objects carry `seamless-test=<run id>` and a `-<run id>` name suffix; host names,
aliases and host ports are as declared, so the declared 127.0.0.1 ports must be free.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from images.build import Builder, build_stack
from infra.platforms.docker import dependency_waves
from lab.docker_engine import DockerEngine
from lab.docker_stack import CONTAINER, DockerStack
from tests.infra.harness import stack_catalog

ROOT = Path(__file__).resolve().parents[3]
STACK = "partial"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    """The daemon that answers, or one started by scripts/docker-engine.sh and stopped again
    at the end (only if this session started it)."""
    eng = DockerEngine().start()
    try:
        yield eng
    finally:
        eng.stop()


@pytest.fixture(scope="session")
def images(engine: DockerEngine) -> Builder:
    """Every image the stack file names, and toxiproxy's (the chaos scenarios run it as a
    container on the stack's network), built locally unless cached by content hash."""
    return build_stack(STACK, with_toxiproxy=True, builder=Builder(log=log))


@pytest.fixture(scope="session")
def declared() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.engine.docker.declarations", STACK],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def host_ports(declared: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (p["ip"], int(p["external"]))
        for r in declared["resources"]
        if r["type"] == CONTAINER
        for p in r["inputs"].get("ports") or []
    ]


@pytest.fixture(scope="session")
def stack(engine: DockerEngine, images: Builder, declared: dict[str, Any]) -> Iterator[DockerStack]:
    busy = []
    for ip, port in host_ports(declared):
        with socket.socket() as sock:
            if sock.connect_ex((ip, port)) == 0:
                busy.append(f"{ip}:{port}")
    assert not busy, f"declared host ports already in use: {busy}"
    waves = dependency_waves(stack_catalog(STACK))
    real = DockerStack(declared["resources"], uuid.uuid4().hex[:8], waves, log=log)

    def after_wave(wave: list[str]) -> None:
        if "minio" in wave:
            real.apply_minio()

    began = time.monotonic()
    try:
        real.create(after_wave=after_wave)
        real.health_seconds["(all)"] = round(time.monotonic() - began, 1)
        log(f"docker-stack: healthy after {real.health_seconds}")
        yield real
    finally:
        left = real.remove()
        real.engine.close()
        assert not left, f"left behind on the daemon: {left}"
