"""The entry point as the real engine runs it (Pulumi.yaml's toolchain and main layout).

The engine's Python language host first runs `<virtualenv>/bin/python -m pip list` (for
`toolchain: pip`), then `runpy.run_path(<main>)` from the project root. Both failed before:
`.venv` had no pip, and `main: infra/` imported `infra` only through an editable install
(another checkout's code, when the install pointed there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra.harness import ROOT, stack_file_config

pytestmark = pytest.mark.infra

# What the language host does after its toolchain check: a script of its own (so its own
# directory, not the project, is sys.path[0]) runs the program directory named by `main`
# from the project root, as __main__ (here under Pulumi's mocks).
DRIVER = """
import json, os, runpy, sys
import pulumi

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", dict(args.inputs)
    def call(self, args):
        return {}

pulumi.runtime.set_mocks(Mocks(), project="seamless-stack", stack="dev", preview=True)
pulumi.runtime.set_all_config(json.loads(os.environ["DRIVER_CONFIG"]))
runpy.run_path(sys.argv[1], run_name="__main__")
print(sys.modules["infra"].__file__)
"""


def _project() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_runtime_toolchain_works_in_the_virtualenv() -> None:
    options = _project()["runtime"]["options"]  # type: ignore[index]
    toolchain = options.get("toolchain", "pip")
    venv = ROOT / options["virtualenv"]
    python = venv / "bin" / "python"
    assert python.exists(), f"{venv} has no python: run `make bootstrap`"
    assert toolchain == "pip", f"toolchain {toolchain!r}: this test knows only pip's check"
    proc = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, f"the engine's `python -m pip list` fails: {proc.stderr}"
    names = {p["name"].lower().replace("_", "-") for p in json.loads(proc.stdout)}
    assert {"pulumi", "pulumi-kubernetes"} <= names


def test_main_imports_this_checkout_and_nothing_else(tmp_path: Path) -> None:
    # A decoy `infra` earlier on sys.path than site-packages stands for another checkout's
    # install: the program must never reach it.
    decoy = tmp_path / "decoy" / "infra"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy infra was imported')\n")
    main = ROOT / str(_project().get("main", "."))
    config = {f"seamless-stack:{k}": v if isinstance(v, str) else json.dumps(v)
              for k, v in stack_file_config("dev").items()}  # fmt: skip
    driver = tmp_path / "language_host.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(driver), str(main)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(decoy.parent),
             "DRIVER_CONFIG": json.dumps(config)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = Path(proc.stdout.strip().splitlines()[-1]).resolve()
    assert imported == (ROOT / "infra" / "__init__.py").resolve(), imported


def test_the_decoy_check_can_fail(tmp_path: Path) -> None:
    """The layout the engine rejected (`main: infra/`) is caught by the same driver."""
    decoy = tmp_path / "decoy" / "infra"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy infra was imported')\n")
    program = tmp_path / "old-main"
    program.mkdir()
    (program / "__main__.py").write_text("import infra.main\n")
    driver = tmp_path / "language_host.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, str(driver), str(program)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(decoy.parent), "DRIVER_CONFIG": "{}"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0 and "decoy infra was imported" in proc.stderr
