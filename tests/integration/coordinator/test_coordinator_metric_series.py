"""/metrics stays bounded however many distinct lease keys callers send (issue 17 item 4):
10,000 keys, each with its own node_id, claimed and completed (some failed and parked, some
let run out) through the real app on real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
from coordinator_testkit import AppFactory, LiveApp, wait_until

pytestmark = pytest.mark.integration

KEYS = 10_000
FAILED_EVERY = 50  # keys given back with a failure (parked: max_attempts=1)
EXPIRED_EVERY = 100  # keys whose short lease is left to run out
LIMIT_BYTES = 200 * 1024
# The families whose label values come from lease keys.
KEY_FAMILIES = (
    "seamless_coordinator_completed",
    "seamless_coordinator_failed",
    "seamless_coordinator_parked",
    "seamless_coordinator_lease_expiries",
    "backfill_completion_ratio",
)


def attacker_key(i: int) -> str:
    # A fresh node_id per key and a long tail: the most series and bytes a key can cost.
    return f"node-{i:05d}-{'n' * 100}:{60 + i % 7}:{i}:{i + 1}:{'w' * 300}:"


async def drive(live: LiveApp, i: int) -> str:
    key = attacker_key(i)
    expires = i % EXPIRED_EVERY == 1
    claim = await live.client.post(
        "/v1/leases/claim", json={"key": key, "lease_ms": 100 if expires else 30_000}
    )
    assert claim.status_code == 200, claim.text
    if expires:
        return "expired"
    token = claim.json()["lease"]["token"]
    if i % FAILED_EVERY == 0:
        failed = await live.client.post(
            "/v1/leases/fail", json={"key": key, "token": token, "reason": "boom"}
        )
        assert failed.status_code == 200, failed.text
        return "failed"
    done = await live.client.post("/v1/leases/complete", json={"key": key, "token": token})
    assert done.status_code == 200, done.text
    return "completed"


def series_counts(live: LiveApp) -> dict[str, int]:
    counts = {}
    for family in live.metrics.registry.collect():
        if family.name in KEY_FAMILIES:
            # A counter's series shows as a _total and a _created sample.
            names = {"backfill_completion_ratio", f"{family.name}_total"}
            counts[family.name] = sum(1 for s in family.samples if s.name in names)
    return counts


def total(live: LiveApp, family: str) -> float:
    return sum(
        s.value
        for f in live.metrics.registry.collect()
        if f.name == family
        for s in f.samples
        if s.name == f"{family}_total"
    )


async def test_metrics_stay_bounded_over_10000_distinct_keys(make_app: AppFactory) -> None:
    async with make_app(max_attempts=1) as live:
        cap = live.settings.max_metric_series
        started = time.monotonic()
        outcomes: list[str] = []
        for batch in range(0, KEYS, 100):
            outcomes += await asyncio.gather(*(drive(live, i) for i in range(batch, batch + 100)))
        expired = outcomes.count("expired")

        async def all_expired() -> bool:
            return total(live, "seamless_coordinator_lease_expiries") == expired

        await wait_until(all_expired, timeout=30, what=f"{expired} expiries")
        elapsed = time.monotonic() - started

        body = (await live.client.get("/metrics")).content
        print(f"\n{KEYS} keys in {elapsed:.1f} s; /metrics {len(body)} bytes; cap {cap}")
        assert len(body) < LIMIT_BYTES

        counts = series_counts(live)
        assert set(counts) == set(KEY_FAMILIES)
        # Each counter keeps `cap` series of its own and one `_other`; the gauge `cap`.
        assert all(count <= cap + 1 for count in counts.values()), counts
        assert counts["backfill_completion_ratio"] == cap

        # Folding keeps every count: the series add up to what happened.
        assert total(live, "seamless_coordinator_completed") == outcomes.count("completed")
        assert total(live, "seamless_coordinator_failed") == outcomes.count("failed")
        assert total(live, "seamless_coordinator_parked") == outcomes.count("failed")
        assert (
            live.metric(
                "seamless_coordinator_completed_total", {"node_id": "_other", "interval": "_other"}
            )
            == outcomes.count("completed") - cap
        )
        # Label values are cut to 128 characters; the ratio gauge keeps the latest keys.
        ratio_keys = [
            s.labels["lease_key"]
            for f in live.metrics.registry.collect()
            if f.name == "backfill_completion_ratio"
            for s in f.samples
        ]
        assert all(len(key) <= 128 for key in ratio_keys)
        # The gauge kept keys of the last (concurrent) batch of 100, not the first ones.
        assert all(int(key[5:10]) >= KEYS - 100 for key in ratio_keys), ratio_keys
