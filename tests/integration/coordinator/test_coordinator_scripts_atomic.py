"""Every lease script applies whole or changes nothing (issue 17, item 2).

Redis does not roll back a script that errors halfway, so each script checks the type of
every key it may write before its first write. Each test here plants a wrongly typed key
that the script would reach only after other writes (the layout a half-applied script used
to leave behind), runs the script, and proves that it refused and that not one key under
the prefix changed. Against the session's real Redis.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from coordinator_testkit import LiveApp
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from seamless.coordinator.store import Finished, Granted, LeaseStore

from lab.servers import RedisServer

pytestmark = pytest.mark.integration

KEY = "atomic:60:0:60::"
OTHER = "atomic:60:60:120::"


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[LeaseStore]:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    yield LeaseStore(redis, prefix=f"atomic-{secrets.token_hex(4)}:", max_attempts=1)
    await redis.aclose()


async def _snapshot(store: LeaseStore) -> dict[str, bytes | None]:
    """Every key under the prefix with its serialised value (type and content)."""
    # A client without decoding, so DUMP's binary payload comes back as bytes.
    kwargs = store.redis.connection_pool.connection_kwargs
    raw = Redis(host=kwargs["host"], port=kwargs["port"])
    try:
        keys = sorted([k async for k in raw.scan_iter(match=f"{store.keys.prefix}*")])
        return {k.decode(): await raw.dump(k) for k in keys}
    finally:
        await raw.aclose()


async def _plant_string(store: LeaseStore, name: str) -> None:
    """A string where the scripts expect another type, under the partition of KEY (and of
    OTHER: both keys share their node, so their partition)."""
    await store.redis.delete(store.keys.of(KEY) + name)
    await store.redis.set(store.keys.of(KEY) + name, "planted")


async def _refused_unchanged(store: LeaseStore, call: Callable[[], Awaitable[object]]) -> None:
    before = await _snapshot(store)
    with pytest.raises(ResponseError, match="changed nothing"):
        await call()
    assert await _snapshot(store) == before


async def _claim(store: LeaseStore, key: str = KEY, **kwargs: object) -> Granted:
    result = await store.claim(key, 60_000, holder="w", client="c", **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Granted), result
    return result


async def test_claim_refuses_whole_when_an_index_is_mistyped(store: LeaseStore) -> None:
    await _plant_string(store, "idx:held")  # written last by a grant
    await _refused_unchanged(store, lambda: _claim(store))
    assert (await store.inspect(KEY)).state == "free"


async def test_claim_refuses_whole_when_its_job_set_is_mistyped(store: LeaseStore) -> None:
    await _plant_string(store, "jobdone:j1")
    await _refused_unchanged(store, lambda: _claim(store, job_id="j1", shards_total=2))


async def test_complete_refuses_whole_and_the_lease_stays_held(store: LeaseStore) -> None:
    lease = await _claim(store, job_id="j1", shards_total=2)
    await _plant_string(store, "jobdone:j1")  # the old script stored `completed`, then failed
    await _refused_unchanged(
        store, lambda: store.complete(KEY, lease.token, client="c", identity="c")
    )
    info = await store.inspect(KEY)
    assert info.state == "held" and info.token == lease.token


async def test_fail_refuses_whole(store: LeaseStore) -> None:
    lease = await _claim(store)
    await _plant_string(store, "idx:held")  # the old script parked the key, then failed
    await _refused_unchanged(
        store, lambda: store.fail(KEY, lease.token, "x", client="c", identity="c")
    )
    assert (await store.inspect(KEY)).state == "held"


async def test_renew_refuses_whole(store: LeaseStore) -> None:
    lease = await _claim(store)
    await _plant_string(store, "idx:held")  # the old script extended `until`, then failed
    await _refused_unchanged(
        store, lambda: store.renew(KEY, lease.token, 5000, client="c", identity="c")
    )
    assert (await store.inspect(KEY)).lease_until_ms == lease.lease_until_ms


async def test_recover_refuses_whole(store: LeaseStore) -> None:
    lease = await _claim(store)
    # Parked: one attempt allowed.
    done = await store.fail(KEY, lease.token, "broken", client="c", identity="c")
    assert isinstance(done, Finished) and done.parked
    await _plant_string(store, "idx:failed")  # the old script freed the key, then failed
    await _refused_unchanged(store, lambda: store.recover(KEY, force=False, identity="c"))
    assert (await store.inspect(KEY)).state == "failed"


async def test_sweep_refuses_whole(store: LeaseStore) -> None:
    for key in (KEY, OTHER):
        await store.claim(key, 100, holder="w", client="c")
        await asyncio.sleep(0.002)  # OTHER ends after KEY, so the sweep reaches it second
    await asyncio.sleep(0.2)  # both ran out (no sweeper runs against this prefix)
    await _plant_string(store, f"lease:{OTHER}")  # the old sweep moved KEY, then failed
    await _refused_unchanged(store, store.sweep)


async def test_ratelimit_refuses_whole(redis_server: RedisServer) -> None:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    store = LeaseStore(redis, prefix=f"atomic-{secrets.token_hex(4)}:", max_attempts=1,
                       rate_limit=5)  # fmt: skip
    try:
        await redis.hset(store.keys.rate("c:w"), "x", "1")
        await _refused_unchanged(store, lambda: store.check_rate("c:w"))
    finally:
        await redis.aclose()


async def test_job_ids_cannot_collide_with_another_jobs_keys(store: LeaseStore) -> None:
    """The issue's attack: a job named `X:done` used to create the key job X keeps its set
    of completed shards in."""
    trap = await _claim(store, OTHER, job_id="X:done", shards_total=1)
    lease = await _claim(store, job_id="X", shards_total=2)
    done = await store.complete(KEY, lease.token, client="c", identity="c")
    assert isinstance(done, Finished) and done.job.ratio(0.0) == 0.5
    trapped = await store.complete(OTHER, trap.token, client="c", identity="c")
    assert isinstance(trapped, Finished) and trapped.job.ratio(0.0) == 1.0


async def test_over_http_a_refused_script_is_503_and_the_retry_is_clean(live: LiveApp) -> None:
    held = live.held_index(KEY)
    await live.redis.set(held, "planted")
    refused = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 5000})
    assert refused.status_code == 503, refused.text
    assert "changed nothing" in refused.json()["detail"]
    assert (await live.client.get(f"/v1/leases/{KEY}")).json()["state"] == "free"
    await live.redis.delete(held)
    granted = await live.client.post("/v1/leases/claim", json={"key": KEY, "lease_ms": 5000})
    assert granted.status_code == 200, granted.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("job_id", "bad\njob"), ("job_id", ""), ("holder", "tab\there"), ("key", "a\x00b")],
)
async def test_strings_that_become_keys_are_checked_at_the_edge(
    live: LiveApp, field: str, value: str
) -> None:
    body = {"key": KEY, "lease_ms": 5000, field: value}
    response = await live.client.post("/v1/leases/claim", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "pattern" in response.json()["detail"] or "at least 1" in response.json()["detail"]
    assert [k async for k in live.redis.scan_iter(match=f"{live.settings.key_prefix}*")] == []
