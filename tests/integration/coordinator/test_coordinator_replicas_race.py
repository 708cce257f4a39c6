"""Two coordinator processes on one real Redis, 16 concurrent workers racing over 200 keys:
every key is completed exactly once and no key's token is ever issued twice.

Workers also give some leases back (`fail`) before a later claim completes the key, so
keys see several claims and the per-key token order is really exercised.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest

from lab.coordinator_process import CoordinatorServer
from lab.servers import RedisServer

pytestmark = pytest.mark.integration

WORKERS = 16
KEYS = [f"race-node:60:{i * 3600}:{i * 3600 + 3599}:w:" for i in range(200)]


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer) -> Iterator[list[CoordinatorServer]]:
    prefix = f"seamless-race-{secrets.token_hex(4)}:"
    tokens = {"race-client": secrets.token_urlsafe(24)}
    servers = [
        CoordinatorServer(redis_server.url, tokens=tokens, key_prefix=prefix, max_attempts=20)
        for _ in range(2)
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.cleanup()


async def test_two_replicas_sixteen_workers_two_hundred_keys(
    replicas: list[CoordinatorServer],
) -> None:
    grants: dict[str, list[int]] = defaultdict(list)
    completions: dict[str, list[int]] = defaultdict(list)
    headers = replicas[0].auth_headers()

    async def worker(index: int) -> None:
        rng = random.Random(index)
        order = KEYS[:]
        rng.shuffle(order)
        base_url = replicas[index % 2].url
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
            pending = order
            while pending:
                next_round = []
                for key in pending:
                    claim = await client.post(
                        "/v1/leases/claim",
                        json={"key": key, "lease_ms": 30_000},
                        headers={"X-Worker-Id": f"worker-{index}"},
                    )
                    if claim.status_code == 409:
                        reason = claim.json()["reason"]
                        assert reason in ("held", "completed"), claim.text
                        if reason == "held":
                            next_round.append(key)  # someone holds it; look again later
                        continue
                    assert claim.status_code == 200, claim.text
                    token = claim.json()["lease"]["token"]
                    grants[key].append(token)
                    if rng.random() < 0.3:
                        failed = await client.post(
                            "/v1/leases/fail",
                            json={"key": key, "token": token, "reason": "injected"},
                        )
                        assert failed.status_code == 200, failed.text
                        next_round.append(key)
                        continue
                    done = await client.post(
                        "/v1/leases/complete", json={"key": key, "token": str(token)}
                    )
                    assert done.status_code == 200, done.text
                    completions[key].append(token)
                pending = next_round

    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(WORKERS))), 240)

    assert sorted(completions) == sorted(KEYS)
    for key in KEYS:
        assert len(completions[key]) == 1, (key, completions[key])
        tokens = grants[key]
        assert len(tokens) == len(set(tokens)), (key, tokens)  # never reused
        assert completions[key][0] == max(tokens)  # only the latest lease could complete
    assert sum(len(t) for t in grants.values()) > len(KEYS)  # fail/re-claim really happened

    async with httpx.AsyncClient(base_url=replicas[1].url, headers=headers) as client:
        for key in rng_sample(KEYS, 20):
            info = (await client.get(f"/v1/leases/{key}")).json()
            assert info["state"] == "completed"
            assert info["token"] == completions[key][0]


def rng_sample(keys: list[str], count: int) -> list[str]:
    return random.Random(7).sample(keys, count)
