"""A lease belongs to the client that claimed it (issue 17, item 3): renew, complete and fail
with its token from another client answer 403 and change nothing; a live token is shown to
its client only; forcing a recovery needs the operator role, claiming the worker role.

Against the session's real Redis, through the real app in this process (worker-a is the
default client, worker-b another worker, `ops` an operator) and through a real coordinator
process over TCP, with the `seamless lease` CLI.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest
from coordinator_testkit import (
    ALL_REDIS_TOPOLOGIES,
    AS_OPERATOR,
    AS_OTHER_CLIENT,
    AppFactory,
    LiveApp,
    wait_until,
)
from seamless.cli import app as cli_app
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import Granted
from seamless.errors import CoordinatorAuthError
from typer.testing import CliRunner

from lab.coordinator_process import CoordinatorServer
from lab.servers import RedisServer

pytestmark = [pytest.mark.integration, ALL_REDIS_TOPOLOGIES]

KEY = "owned-node:60:0:3600::"


async def _claim(live: LiveApp, lease_ms: int = 30_000, **kwargs: object) -> dict:
    response = await live.client.post(
        "/v1/leases/claim",
        json={"key": KEY, "lease_ms": lease_ms},
        **kwargs,  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text
    lease: dict = response.json()["lease"]
    return lease


async def _record(live: LiveApp) -> tuple[dict, float | None, float | None]:
    """Everything a refused request must leave alone: the lease hash and its index scores."""
    return (
        await live.redis.hgetall(live.keys.lease(KEY)),
        await live.redis.zscore(live.held_index(KEY), KEY),
        await live.redis.zscore(live.expired_index(KEY), KEY),
    )


def _body(operation: str, token: int) -> dict:
    body: dict = {"key": KEY, "token": token}
    if operation == "renew":
        body["lease_ms"] = 60_000
    if operation == "fail":
        body["reason"] = "not mine"
    return body


@pytest.mark.parametrize("operation", ["renew", "complete", "fail"])
async def test_another_clients_right_token_is_403_and_changes_nothing(
    live: LiveApp, operation: str
) -> None:
    lease = await _claim(live)
    before = await _record(live)
    response = await live.client.post(
        f"/v1/leases/{operation}", json=_body(operation, lease["token"]), headers=AS_OTHER_CLIENT
    )
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "not_owner" and body["field"] == "token"
    assert "another client" in body["detail"] and operation in body["detail"]
    assert str(lease["token"]) not in response.text  # neither the token nor its owner
    assert "worker-a" not in response.text
    assert body["completion_ratio"] == 0.0  # QMTL's client reads one on every refusal
    assert await _record(live) == before
    # The owner's lease is intact: it still completes.
    done = await live.client.post("/v1/leases/complete", json=_body("complete", lease["token"]))
    assert done.status_code == 200, done.text


@pytest.mark.parametrize("operation", ["renew", "complete", "fail"])
async def test_another_clients_wrong_token_is_stale_as_before(
    live: LiveApp, operation: str
) -> None:
    """A wrong token gets 409 stale whoever sends it: guessing tokens for another client's
    key tells nothing beyond "not the current token" (no 403 that would confirm a guess is
    right and nothing about whose the key is)."""
    lease = await _claim(live)
    before = await _record(live)
    response = await live.client.post(
        f"/v1/leases/{operation}",
        json=_body(operation, lease["token"] + 1),
        headers=AS_OTHER_CLIENT,
    )
    assert response.status_code == 409 and response.json()["reason"] == "stale"
    assert response.json()["completion_ratio"] == 0.0
    assert await _record(live) == before


async def test_an_expired_lease_is_still_not_another_clients(make_app: AppFactory) -> None:
    # No sweep after start-up: only the requests below may note the expiry (a sweep racing
    # them would move the key between the index reads).
    async with make_app(sweep_interval_ms=60_000) as live:
        lease = await _claim(live, lease_ms=100)

        async def ran_out() -> bool:
            return (await live.client.get(f"/v1/leases/{KEY}")).json()["state"] == "free"

        await wait_until(ran_out, what="the 100 ms lease to run out")
        before = await _record(live)
        response = await live.client.post(
            "/v1/leases/complete", json=_body("complete", lease["token"]), headers=AS_OTHER_CLIENT
        )
        assert response.status_code == 403 and response.json()["error"] == "not_owner"
        assert await _record(live) == before  # no expiry noted by another client's request
        mine = await live.client.post("/v1/leases/complete", json=_body("complete", lease["token"]))
        assert mine.status_code == 409 and mine.json()["reason"] == "stale"  # the owner: expired


async def test_another_clients_replay_of_a_fail_is_403(live: LiveApp) -> None:
    lease = await _claim(live)
    first = await live.client.post("/v1/leases/fail", json=_body("fail", lease["token"]))
    assert first.status_code == 200
    before = await _record(live)
    response = await live.client.post(
        "/v1/leases/fail", json=_body("fail", lease["token"]), headers=AS_OTHER_CLIENT
    )
    assert response.status_code == 403 and response.json()["error"] == "not_owner"
    assert await _record(live) == before
    again = await live.client.post("/v1/leases/fail", json=_body("fail", lease["token"]))
    assert again.status_code == 200  # the owner's replay still answers as the first fail


async def test_inspect_and_list_show_a_live_token_to_its_client_only(live: LiveApp) -> None:
    lease = await _claim(live)
    mine = (await live.client.get(f"/v1/leases/{KEY}")).json()
    assert mine["token"] == lease["token"] and mine["client"] == "worker-a"
    for headers in (AS_OTHER_CLIENT, AS_OPERATOR):
        theirs = await live.client.get(f"/v1/leases/{KEY}", headers=headers)
        assert theirs.status_code == 200
        info = theirs.json()
        assert info["token"] is None and str(lease["token"]) not in theirs.text
        assert {k: v for k, v in info.items() if k != "token"} == {
            k: v for k, v in mine.items() if k != "token"
        }  # state, holder, client, lease end, attempts: all shown

    # A token that ran out gives no power (its renew/complete is stale): the listing of
    # expired keys shows it to operators and other clients alike.
    expired_key = "owned-expired:60:0:59::"
    claimed = await live.client.post(
        "/v1/leases/claim", json={"key": expired_key, "lease_ms": 100}, headers=AS_OTHER_CLIENT
    )
    token = claimed.json()["lease"]["token"]

    async def listed() -> bool:
        leases = (await live.client.get("/v1/leases", params={"state": "expired"})).json()
        return expired_key in [info["key"] for info in leases["leases"]]

    await wait_until(listed, what="the 100 ms lease to be listed as expired")
    leases = (await live.client.get("/v1/leases", params={"state": "expired"})).json()["leases"]
    assert [info["token"] for info in leases if info["key"] == expired_key] == [token]


async def test_recover_force_needs_the_operator_role(live: LiveApp) -> None:
    lease = await _claim(live)
    before = await _record(live)
    for headers in ({}, AS_OTHER_CLIENT):  # the holder's own client is no operator either
        refused = await live.client.post(
            "/v1/leases/recover", json={"key": KEY, "force": True}, headers=headers
        )
        assert refused.status_code == 403, refused.text
        body = refused.json()
        assert body["error"] == "forbidden" and body["field"] == "force"
        assert "'operator' role" in body["detail"]
    assert await _record(live) == before

    forced = await live.client.post(
        "/v1/leases/recover", json={"key": KEY, "force": True}, headers=AS_OPERATOR
    )
    assert forced.status_code == 200 and forced.json()["previous_state"] == "held"
    assert forced.json()["lease"]["state"] == "free"
    stale = await live.client.post("/v1/leases/complete", json=_body("complete", lease["token"]))
    assert stale.status_code == 409 and stale.json()["reason"] == "stale"


async def test_unforced_recover_stays_open_to_workers(live: LiveApp) -> None:
    lease = await _claim(live, headers=AS_OTHER_CLIENT)
    failed = await live.client.post(
        "/v1/leases/fail", json=_body("fail", lease["token"]), headers=AS_OTHER_CLIENT
    )
    assert failed.status_code == 200
    recovered = await live.client.post("/v1/leases/recover", json={"key": KEY})  # worker-a
    assert recovered.status_code == 200 and recovered.json()["previous_state"] == "free"


async def test_claiming_needs_the_worker_role(live: LiveApp) -> None:
    refused = await live.client.post(
        "/v1/leases/claim", json={"key": KEY, "lease_ms": 1000}, headers=AS_OPERATOR
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden" and "'worker' role" in refused.json()["detail"]
    assert await live.redis.exists(live.keys.lease(KEY)) == 0


# --- a real coordinator process, over TCP, and the CLI ----------------------------------------

WORKER_A = "worker-a-" + secrets.token_hex(8)
WORKER_B = "worker-b-" + secrets.token_hex(8)
OPS = "ops-token-" + secrets.token_hex(8)
PROCESS_KEY = "owned-process:60:0:59::"


@pytest.fixture(scope="module")
def server(redis_server: RedisServer) -> Iterator[CoordinatorServer]:
    tokens = {"worker-a": WORKER_A, "worker-b": WORKER_B, "ops": OPS}
    configured = {**tokens, "ops": {"token": OPS, "roles": ["operator"]}}
    coordinator = CoordinatorServer(
        redis_server.url,
        tokens=tokens,
        key_prefix=f"seamless-owned-{secrets.token_hex(4)}:",
        extra_env={"COORDINATOR_TOKENS": json.dumps(configured)},  # the role form
    )
    with coordinator:
        yield coordinator


def _lease_cli(server: CoordinatorServer, token: str, *args: str) -> tuple[int, str]:
    env = {"SEAMLESS_COORDINATOR_URL": server.url, "SEAMLESS_COORDINATOR_TOKEN": token}
    result = CliRunner().invoke(cli_app, ["lease", *args], env=env)
    return result.exit_code, result.output


def test_the_process_enforces_ownership_and_roles(server: CoordinatorServer) -> None:
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        a, b = server.auth_headers("worker-a"), server.auth_headers("worker-b")
        claimed = http.post("/v1/leases/claim", json={"key": PROCESS_KEY, "lease_ms": 60_000},
                            headers=a)  # fmt: skip
        assert claimed.status_code == 200, claimed.text
        token = claimed.json()["lease"]["token"]
        for operation in ("renew", "complete", "fail"):
            body = {"key": PROCESS_KEY, "token": token, "lease_ms": 60_000, "reason": "x"}
            refused = http.post(f"/v1/leases/{operation}", json=body, headers=b)
            assert refused.status_code == 403, (operation, refused.text)
        seen_by_b = http.get(f"/v1/leases/{PROCESS_KEY}", headers=b).json()
        assert seen_by_b["state"] == "held" and seen_by_b["token"] is None
        assert http.get(f"/v1/leases/{PROCESS_KEY}", headers=a).json()["token"] == token

    code, output = _lease_cli(server, WORKER_A, "recover", PROCESS_KEY, "--force")
    line = " ".join(output.split())  # rich wraps long lines
    assert code == 1 and "Traceback" not in output, output
    assert "forbidden (HTTP 403): recover with force needs the 'operator' role" in line
    assert "client 'worker-a' has worker" in line
    assert "SEAMLESS_COORDINATOR_TOKEN to the token of a client with the operator role" in line
    code, output = _lease_cli(server, OPS, "recover", PROCESS_KEY, "--force")
    assert code == 0, output
    assert "recovered" in output and "was held" in output


async def test_the_sdk_client_names_a_403(server: CoordinatorServer) -> None:
    key = "owned-sdk:60:0:59::"
    async with (
        CoordinatorClient(server.url, token=WORKER_A, worker_id="a-1") as a,
        CoordinatorClient(server.url, token=WORKER_B, worker_id="b-1") as b,
    ):
        granted = await a.claim(key, 30_000)
        assert isinstance(granted, Granted)
        with pytest.raises(CoordinatorAuthError, match="HTTP 403 not_owner \\(field token\\)"):
            await b.complete(granted.lease)
        assert (await b.inspect(key)).token is None
        assert (await a.inspect(key)).token == granted.lease.token
        await a.complete(granted.lease)
