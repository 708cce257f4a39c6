"""lab/docker_stack.py: a declared one-shot job (a container run to completion) starts only
once its service's wave is healthy, and must exit 0; checked against a stand-in engine
that records the calls the real one would get."""

from __future__ import annotations

from typing import Any

import pytest

from lab.docker_stack import CONTAINER, NETWORK, DockerStack, DockerStackError, is_job

pytestmark = pytest.mark.unit

SERVICE = {
    "name": "bus",
    "image": "img",
    "labels": [{"label": "seamless-stack", "value": "bus"}],
    "healthcheck": {"tests": ["CMD", "true"], "interval": "1s", "timeout": "1s"},
}
JOB = {"name": "bus-acl", "image": "img", "attach": True, "mustRun": False,
       "labels": [{"label": "seamless-stack", "value": "bus"},
                  {"label": "seamless-role", "value": "job"}]}  # fmt: skip


class FakeEngine:
    def __init__(self, job_exit: int) -> None:
        self.calls: list[str] = []
        self.job_exit = job_exit

    def call(self, method: str, path: str, **kw: Any) -> Any:
        self.calls.append(f"{method} {path} {kw.get('params', {}).get('name', '')}".strip())

        class Reply:
            def json(self) -> dict[str, str]:
                return {"Id": str(kw.get("params", {}).get("name", "x"))}

        return Reply()

    def inspect(self, container: str) -> dict[str, Any]:
        if container.startswith("bus-acl"):
            return {"State": {"Status": "exited", "Running": False, "ExitCode": self.job_exit}}
        return {"State": {"Status": "running", "Running": True, "Health": {"Status": "healthy"}}}

    def logs(self, container: str, tail: int = 40) -> str:
        return "acl-bootstrap: broker refused"


def _stack(engine: FakeEngine) -> DockerStack:
    resources = [
        {"type": NETWORK, "name": "n", "inputs": {"name": "net"}},
        {"type": CONTAINER, "name": "bus", "inputs": SERVICE},
        {"type": CONTAINER, "name": "bus-acl", "inputs": JOB},
    ]
    return DockerStack(resources, "run1", [["bus"]], engine=engine, log=lambda m: None)  # type: ignore[arg-type]


def test_a_job_is_a_container_run_to_completion() -> None:
    assert is_job(JOB) and not is_job(SERVICE)
    assert not is_job({**JOB, "mustRun": True})


def test_the_job_starts_after_its_service_is_healthy_and_exit_0_passes() -> None:
    engine = FakeEngine(job_exit=0)
    stack = _stack(engine)
    stack.create()
    starts = [c for c in engine.calls if c.startswith("POST /containers/") and "/start" in c]
    assert starts == ["POST /containers/bus-run1/start", "POST /containers/bus-acl-run1/start"]
    assert "bus-acl" in stack.health_seconds


def test_a_job_that_exits_non_zero_fails_with_its_logs() -> None:
    stack = _stack(FakeEngine(job_exit=3))
    with pytest.raises(DockerStackError, match=r"bus-acl-run1 exited 3[\s\S]*broker refused"):
        stack.create()
