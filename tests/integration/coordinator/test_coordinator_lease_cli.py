"""`seamless lease inspect|list|recover` against a live coordinator process."""

from __future__ import annotations

import json

import httpx
import pytest
from seamless.cli import app
from typer.testing import CliRunner

from lab.coordinator_process import CoordinatorServer

pytestmark = pytest.mark.integration

KEY = "cli-node:60:0:59::"


def run(server: CoordinatorServer, *args: str, token: str | None = None) -> tuple[int, str]:
    env = {
        "SEAMLESS_COORDINATOR_URL": server.url,
        "SEAMLESS_COORDINATOR_TOKEN": token if token is not None else server.token,
    }
    result = CliRunner().invoke(app, ["lease", *args], env=env)
    return result.exit_code, result.output


def test_inspect_list_and_recover_a_parked_key(coordinator_server: CoordinatorServer) -> None:
    headers = coordinator_server.auth_headers()
    url = coordinator_server.url
    for attempt in range(6):  # the fixture's server parks after the default 6 attempts
        lease = httpx.post(
            f"{url}/v1/leases/claim", json={"key": KEY, "lease_ms": 10_000}, headers=headers
        ).json()["lease"]
        httpx.post(
            f"{url}/v1/leases/fail",
            json={"key": KEY, "token": lease["token"], "reason": f"boom {attempt}"},
            headers=headers,
        ).raise_for_status()

    code, output = run(coordinator_server, "inspect", KEY, "--json")
    assert code == 0, output
    info = json.loads(output)
    assert info["state"] == "failed" and info["attempts"] == 6
    assert info["last_reason"] == "boom 5"

    code, output = run(coordinator_server, "list", "--state", "failed", "--json")
    assert code == 0, output
    assert KEY in [lease["key"] for lease in json.loads(output)["leases"]]

    code, output = run(coordinator_server, "list")
    assert code == 0 and "cli-node" in output

    code, output = run(coordinator_server, "recover", KEY)
    assert code == 0, output
    assert "recovered" in output and "was failed" in output
    code, output = run(coordinator_server, "inspect", KEY, "--json")
    assert json.loads(output)["state"] == "free" and json.loads(output)["attempts"] == 0


def test_cli_errors_are_one_clear_line(coordinator_server: CoordinatorServer) -> None:
    code, output = run(coordinator_server, "inspect", KEY, token="not-the-token-at-all")
    assert code == 1 and "refused the credentials" in output
    assert "Traceback" not in output

    held = "cli-node:60:60:119::"
    httpx.post(
        f"{coordinator_server.url}/v1/leases/claim",
        json={"key": held, "lease_ms": 60_000},
        headers=coordinator_server.auth_headers(),
    ).raise_for_status()
    code, output = run(coordinator_server, "recover", held)
    assert code == 1 and "held" in output

    code, output = run(coordinator_server, "list", "--state", "everything")
    assert code == 1 and "expected failed or expired" in output
