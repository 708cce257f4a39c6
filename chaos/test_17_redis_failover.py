"""Scenario 17: the Redis primary is killed under load and Sentinel promotes its replica.

A real coordinator process on a primary/replica/3-sentinel set, every state change
acknowledged by the replica (COORDINATOR_REDIS_MIN_REPLICAS=1). Eight workers race for the
same keys (each tries every key, in its own order) while the primary is SIGKILLed. A reply
that never came, or a 503, is retried as a real client retries: the same claim request id,
the same complete token. Afterwards every answer the workers got is checked.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from chaos.conftest import ScenarioRun, wait_for
from lab.coordinator_process import CoordinatorServer
from lab.redis_topologies import RedisSentinelSet

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

LEASE_MS = 60_000  # far beyond the scenario: no lease may legitimately expire in it
WORKERS = 8
KEYS = [f"s17-node:60:{i * 60}:{i * 60 + 60}::" for i in range(160)]
WORK_S = 0.1  # per shard: the keys outlast the failover, so work goes on after it
# Sentinel: down-after 1 s, then an election and the promotion; several times that on a
# loaded machine.
PROMOTION_DEADLINE_S = 30.0
RETRY_DEADLINE_S = 40.0


@dataclass
class Answers:
    grants: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
    completes: dict[str, list[int]] = field(default_factory=dict)
    unavailable: int = 0
    lost_replies: int = 0
    after_promotion: int = 0
    promoted: bool = False


async def _until_answered(
    client: httpx.AsyncClient, path: str, body: dict[str, object], answers: Answers
) -> httpx.Response:
    """POST until an answer other than 503 comes back (a lost reply is retried the same)."""
    deadline = time.monotonic() + RETRY_DEADLINE_S
    while True:
        try:
            response = await client.post(path, json=body)
            if response.status_code != 503:
                return response
            answers.unavailable += 1
        except httpx.TransportError:
            answers.lost_replies += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} unanswered for {RETRY_DEADLINE_S} s: {body}")
        await asyncio.sleep(0.05)


async def _worker(name: str, server: CoordinatorServer, answers: Answers) -> None:
    order = KEYS[:]
    random.Random(name).shuffle(order)
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={**server.auth_headers(), "X-Worker-Id": name},
        timeout=3.0,
    ) as client:
        for key in order:
            claim = {"key": key, "lease_ms": LEASE_MS, "request_id": uuid.uuid4().hex}
            response = await _until_answered(client, "/v1/leases/claim", claim, answers)
            if response.status_code != 200:
                assert response.status_code == 409, response.text  # held or completed
                continue
            token = int(response.json()["lease"]["token"])
            answers.grants.setdefault(key, []).append((name, token, time.monotonic_ns()))
            if answers.promoted:
                answers.after_promotion += 1
            await asyncio.sleep(WORK_S)
            done = await _until_answered(
                client, "/v1/leases/complete", {"key": key, "token": token}, answers
            )
            if done.status_code == 200:
                answers.completes.setdefault(key, []).append(token)


@pytest.mark.scenario(
    17,
    "Redis primary killed, Sentinel promotes the replica",
    fault="SIGKILL of the Redis primary while eight workers race for 160 keys through one "
    "coordinator on a primary/replica/3-sentinel set (state changes wait for the replica)",
    expected="requests during the failover answer 503 or lose their reply and are retried; "
    "no key is granted twice, no complete is accepted for a token that is not the key's "
    "grant, every accepted complete is still there after the promotion, and work goes on on "
    "the promoted replica",
)
async def test_redis_primary_failover(scenario: ScenarioRun) -> None:
    with RedisSentinelSet() as redis_set:
        server = CoordinatorServer(
            redis_set.url,
            key_prefix="s17:",
            extra_env={
                "COORDINATOR_REDIS_MIN_REPLICAS": "1",
                "COORDINATOR_REDIS_REPLICA_TIMEOUT_MS": "500",
            },
        )
        with server:
            answers = Answers()
            workers = [
                asyncio.create_task(_worker(f"s17-w{i}", server, answers)) for i in range(WORKERS)
            ]
            await wait_for(
                lambda: sum(len(g) for g in answers.grants.values()) >= 8,
                timeout=20,
                what="the first grants",
            )
            before = sum(len(g) for g in answers.grants.values())
            killed_at = time.monotonic()
            await asyncio.to_thread(redis_set.kill_primary)
            await asyncio.to_thread(redis_set.wait_promoted, PROMOTION_DEADLINE_S)
            answers.promoted = True
            scenario.observe(
                f"{before} grants before the kill; replica promoted "
                f"{time.monotonic() - killed_at:.1f} s after it"
            )
            await asyncio.gather(*workers)

            async with httpx.AsyncClient(
                base_url=server.url, headers=server.auth_headers(), timeout=5.0
            ) as reader:
                final = {key: (await reader.get(f"/v1/leases/{key}")).json() for key in KEYS}

    grants = answers.grants
    scenario.observe(
        f"{sum(len(g) for g in grants.values())} grants, "
        f"{sum(len(c) for c in answers.completes.values())} completes accepted, "
        f"{answers.unavailable} answers 503, {answers.lost_replies} replies lost, "
        f"{answers.after_promotion} grants after the promotion"
    )
    twice = {key: g for key, g in grants.items() if len(g) > 1}
    scenario.expect("no key granted twice", not twice, str(twice))
    stale = {
        key: (tokens, [t for _, t, _ in grants.get(key, [])])
        for key, tokens in answers.completes.items()
        if len(tokens) != 1 or tokens[0] != grants[key][-1][1]
    }
    scenario.expect("no complete accepted but the key's grant's, once", not stale, str(stale))
    lost = {
        key: final[key]["state"] for key in answers.completes if final[key]["state"] != "completed"
    }
    scenario.expect("every accepted complete survived the failover", not lost, str(lost))
    scenario.expect(
        "every key was completed exactly once in the end",
        set(answers.completes) == set(KEYS),
        f"{len(answers.completes)} of {len(KEYS)}",
    )
    scenario.expect(
        "work went on on the promoted replica",
        answers.after_promotion > 0,
        f"{answers.after_promotion} grants after the promotion",
    )
    scenario.verify()
