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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from images.build import Builder, build_stack
from infra.platforms.docker import dependency_waves
from lab.docker_engine import DockerEngine
from lab.docker_stack import CONTAINER, DockerStack, health_deadline_s
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


def declarations(stack: str) -> dict[str, Any]:
    """What the real program declares for `stack` under the recording mocks (own process)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.engine.docker.declarations", stack],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


@pytest.fixture(scope="session")
def declared() -> dict[str, Any]:
    return declarations(STACK)


def host_ports(resources: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [
        (p["ip"], int(p["external"]))
        for r in resources
        if r["type"] == CONTAINER
        for p in r["inputs"].get("ports") or []
    ]


@contextmanager
def brought_up(
    resources: list[dict[str, Any]],
    waves: list[list[str]],
    *,
    name: str,
    after_wave: Callable[[DockerStack, list[str]], None] | None = None,
) -> Iterator[DockerStack]:
    """`resources` created on the daemon wave by wave, every health check passed; removed
    afterwards, and nothing may be left behind. The declared host ports must be free."""
    busy = []
    for ip, port in host_ports(resources):
        with socket.socket() as sock:
            if sock.connect_ex((ip, port)) == 0:
                busy.append(f"{ip}:{port}")
    assert not busy, f"declared host ports already in use: {busy}"
    real = DockerStack(resources, uuid.uuid4().hex[:8], waves, log=log)
    began = time.monotonic()
    try:
        real.create(after_wave=None if after_wave is None else lambda w: after_wave(real, w))
        real.health_seconds["(all)"] = round(time.monotonic() - began, 1)
        log(f"{name}: healthy after {real.health_seconds}")
        yield real
    finally:
        left = real.remove()
        real.engine.close()
        assert not left, f"left behind on the daemon: {left}"


def assert_running_as_declared(stack: DockerStack, name: str) -> None:
    """Container `name` is healthy within its check's own deadline, publishes exactly its
    declared host ports and only on 127.0.0.1, and has the declared read-only root."""
    declared = stack.containers()[name]
    state = stack.engine.inspect(stack.created[name])
    assert state["State"]["Health"]["Status"] == "healthy", name
    assert stack.health_seconds[name] <= health_deadline_s(declared["healthcheck"])
    published = {
        (b["HostIp"], int(b["HostPort"]))
        for bindings in (state["NetworkSettings"]["Ports"] or {}).values()
        for b in bindings or []
    }
    want = {(p["ip"], int(p["external"])) for p in declared.get("ports") or []}
    assert published == want and all(ip == "127.0.0.1" for ip, _ in published), name
    assert state["HostConfig"]["ReadonlyRootfs"] is bool(declared.get("readOnly"))


def _apply_minio(stack: DockerStack, wave: list[str]) -> None:
    if "minio" in wave:
        stack.apply_minio()


@pytest.fixture(scope="session")
def stack(engine: DockerEngine, images: Builder, declared: dict[str, Any]) -> Iterator[DockerStack]:
    waves = dependency_waves(stack_catalog(STACK))
    with brought_up(
        declared["resources"], waves, name="docker-stack", after_wave=_apply_minio
    ) as real:
        yield real
