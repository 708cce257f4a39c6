"""images/build.py's recipes: every local image a stack file names has one, the Maven
libraries are fetched once per version and POM, and the Postgres entrypoint initialises a
new data directory as the catalog expects (run here with stand-in server binaries)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from images import build
from images.build import ROOT_DIR, BuildError, recipes, stack_images

pytestmark = pytest.mark.unit

STACKS = sorted(p.name.split(".")[1] for p in ROOT_DIR.glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_local_image_a_stack_names_has_a_recipe(stack: str) -> None:
    local = {s for s, ref in stack_images(stack).items() if ref.startswith("seamless-local/")}
    assert local <= {*recipes(), "seamless-coordinator"}, stack


def test_every_recipe_builds_from_a_root_it_declares() -> None:
    for service, (family, dockerfile, _fill) in recipes().items():
        assert family in build.ROOTS, service
        text = dockerfile.read_text()
        assert "ARG ROOT" in text and "FROM ${ROOT}" in text, service


def test_maven_libs_are_fetched_once_per_version_and_pom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAMLESS_TOOL_CACHE", str(tmp_path))
    monkeypatch.setattr(build.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], what: str, **kw: object) -> None:
        calls.append(cmd)
        libs = Path(cmd[cmd.index("-f") + 1]).parent / "target" / "libs"
        libs.mkdir(parents=True)
        (libs / "kafka_2.13.jar").write_bytes(b"jar")

    monkeypatch.setattr(build, "_run", fake_run)
    first = build.maven_libs("kafka", "KAFKA_VERSION")
    again = build.maven_libs("kafka", "KAFKA_VERSION")
    assert first == again and (first / "kafka_2.13.jar").exists()
    assert len(calls) == 1
    version = build._versions()["KAFKA_VERSION"]
    assert f"-Dkafka.version={version}" in calls[0] and version in first.name


def test_maven_libs_name_a_missing_version_key() -> None:
    with pytest.raises(BuildError, match=r"NO_SUCH_VERSION is not set in scripts/versions\.env"):
        build.maven_libs("kafka", "NO_SUCH_VERSION")


# --- the Postgres entrypoint, with stand-ins for initdb, pg_ctl and psql ----------------------

STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0")" in
  initdb) mkdir -p "$PGDATA"; echo 15 > "$PGDATA/PG_VERSION"; : > "$PGDATA/postgresql.conf"
          : > "$PGDATA/pg_hba.conf"; for a in "$@"; do case "$a" in --pwfile=*)
          echo "pw:$(cat "${a#--pwfile=}")" >> "$STUB_LOG";; esac; done ;;
esac
"""


def _entrypoint(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("initdb", "pg_ctl", "psql", "postgres"):
        stub = bin_dir / name
        stub.write_text(STUB)
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    script = ROOT_DIR / "images" / "postgres" / "entrypoint.sh"
    return subprocess.run(
        ["sh", str(script), "postgres"],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(tmp_path / "log"), **env},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_postgres_entrypoint_initialises_a_new_data_directory_once(tmp_path: Path) -> None:
    secret = tmp_path / "superuser"
    secret.write_text("s3cret-superuser")
    init = tmp_path / "init"
    init.mkdir()
    env = {"PGDATA": str(tmp_path / "data"), "POSTGRES_PASSWORD_FILE": str(secret)}
    first = _entrypoint(tmp_path, env)
    assert first.returncode == 0, first.stderr
    log = (tmp_path / "log").read_text()
    # the password reaches initdb through its file, never on a command line or in output
    assert "pw:s3cret-superuser" in log and "s3cret" not in first.stdout + first.stderr
    assert "--auth-host=scram-sha-256" in log and log.rstrip().endswith("postgres")
    assert "host all all all scram-sha-256" in (tmp_path / "data" / "pg_hba.conf").read_text()
    (tmp_path / "log").unlink()
    second = _entrypoint(tmp_path, env)  # an initialised directory: straight to the server
    assert second.returncode == 0 and (tmp_path / "log").read_text() == "postgres \n"


def test_postgres_entrypoint_names_the_missing_password_file(tmp_path: Path) -> None:
    proc = _entrypoint(tmp_path, {"PGDATA": str(tmp_path / "data")})
    assert proc.returncode != 0 and "POSTGRES_PASSWORD_FILE" in proc.stderr
