"""The program's own declarations for a Docker stack, as Pulumi's mock engine receives them.

The Pulumi docker and minio providers cannot be built here (docs/deploy.md), so no engine
can run the Docker stacks. This runs the real program (`__main__.py`) under the recording
mocks of tests/infra/harness.py and prints, as one JSON line, every `docker:*` and `minio:*`
resource with its inputs (secrets unwrapped) plus the stack outputs a client reads; the
engine test creates exactly those objects on a real dockerd. One process per call, so the
program's Pulumi runtime state never mixes with the test process (as the Kubernetes driver).

    python -m tests.engine.docker.declarations partial
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pulumi

from tests.infra.harness import run_program, stack_file_config

OUTPUTS = ("hostSdkConfig", "sdkConfig", "coordinatorOperatorToken", "services", "endpoints")
PREFIXES = ("docker:", "minio:", "pulumi:providers:minio")


def declarations(stack: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[misc]  # untyped decorator
    def record() -> pulumi.Output[Any]:
        run = run_program(stack, stack_file_config(stack))

        async def collect() -> None:
            await run.bundle.settled().future()
            found["outputs"] = {
                key: await pulumi.Output.from_input(run.outputs[key]).future()
                for key in OUTPUTS
                if key in run.outputs
            }
            found["resources"] = [
                {"type": r.typ, "name": r.name, "inputs": r.inputs}
                for r in run.mocks.resources
                if r.typ.startswith(PREFIXES)
            ]

        return pulumi.Output.from_input(collect())

    record()
    return found


if __name__ == "__main__":
    print(json.dumps(declarations(sys.argv[1] if len(sys.argv) > 1 else "partial")))
