"""Runs the real Pulumi engine on the bundle through the Automation API (inline program).

One process per call, so the program's Pulumi runtime state never mixes with the mock
engine's in the test process. Usage (JSON on argv[1], one JSON result line on stdout):

    python -m tests.engine.kubernetes.driver '{"work_dir": ..., "stack": "prod",
        "config": {"kubernetes:kubeconfig": ...}, "steps": ["preview", "up"]}'

The CLI is `.tools/bin/pulumi`; PULUMI_HOME, the backend and the passphrase come from the
environment the test sets (a fresh home with only the kubernetes plugin, a file:// backend).
The program runs in this process: no Python language host is needed (none can be built).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from infra.main import main

ROOT = Path(__file__).resolve().parents[3]
CLI_ROOT = ROOT / ".tools"  # PulumiCommand wants ROOT/bin/pulumi


def program() -> None:
    main()


def _summary(changes: Mapping[Any, int] | None) -> dict[str, int]:
    # Keys are OpType enums in previews and plain strings in update summaries.
    return {str(getattr(k, "value", k)): int(v) for k, v in (changes or {}).items()}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    work_dir = Path(spec["work_dir"])
    log = (work_dir / f"engine-{spec.get('label', 'run')}.log").open("a")
    stack = auto.create_or_select_stack(
        stack_name=spec["stack"],
        project_name="seamless-stack",
        program=program,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            pulumi_command=auto.PulumiCommand(root=str(CLI_ROOT), skip_version_check=True),
            project_settings=auto.ProjectSettings(
                name="seamless-stack",
                runtime="python",
                backend=auto.ProjectBackend(url=spec["backend"]),
            ),
        ),
    )
    for key, value in spec.get("config", {}).items():
        stack.set_config(key, auto.ConfigValue(value=value, secret=False))
    results: list[dict[str, Any]] = []
    for step in spec["steps"]:
        start = time.monotonic()
        out: dict[str, Any] = {"step": step}
        if step == "preview":
            preview = stack.preview(on_output=log.write, color="never", diff=False)
            out["changes"] = _summary(preview.change_summary)
        elif step == "preview-no-changes":
            preview = stack.preview(on_output=log.write, color="never", expect_no_changes=True)
            out["changes"] = _summary(preview.change_summary)
        elif step == "up":
            up = stack.up(on_output=log.write, color="never")
            out["changes"] = _summary(up.summary.resource_changes)
            out["result"] = up.summary.result
            out["outputs"] = {k: v.value for k, v in up.outputs.items() if not v.secret}
        elif step == "destroy":
            destroy = stack.destroy(on_output=log.write, color="never")
            out["changes"] = _summary(destroy.summary.resource_changes)
            out["result"] = destroy.summary.result
        else:
            raise ValueError(f"unknown step {step!r}")
        out["seconds"] = round(time.monotonic() - start, 1)
        results.append(out)
        log.flush()
    log.close()
    return {"steps": results}


if __name__ == "__main__":
    try:
        result = run(json.loads(sys.argv[1]))
    except auto.CommandError as exc:
        # The engine's own message (stderr of the CLI), e.g. a refused object or a timeout.
        print(json.dumps({"error": str(exc)[-6000:]}))
        sys.exit(2)
    print(json.dumps(result))
