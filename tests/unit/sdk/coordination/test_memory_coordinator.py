"""The in-memory coordinator keeps the service's semantics: fencing tokens, held /
completed / stale, expiry and re-claim, fail → re-claimable → parked, job completion ratio.

A refused claim carries the key's real completion ratio, as the service's 409 does (0.0
while held or failed, 1.0 once completed, the job's ratio for a job's key)."""

from __future__ import annotations

import pytest
from seamless.coordination.interface import Granted, NotGranted
from seamless.coordination.memory import InMemoryCoordinator
from seamless.errors import InvalidRequestError, LeaseLost

pytestmark = pytest.mark.unit


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def coord(clock: ManualClock) -> InMemoryCoordinator:
    return InMemoryCoordinator(max_attempts=3, clock_ms=clock)


async def _granted(coord: InMemoryCoordinator, key: str, lease_ms: int = 1000) -> Granted:
    outcome = await coord.claim(key, lease_ms)
    assert isinstance(outcome, Granted), outcome
    return outcome


async def test_claim_held_complete_completed(
    coord: InMemoryCoordinator, clock: ManualClock
) -> None:
    first = await _granted(coord, "n:60:0:100::")
    assert first.lease.lease_until_ms == clock.now + 1000
    held = await coord.claim("n:60:0:100::", 1000)
    assert held == NotGranted("n:60:0:100::", "held", first.lease.lease_until_ms, 0.0)
    ratio = await coord.complete(first.lease)
    assert ratio.completion_ratio == 1.0
    assert await coord.claim("n:60:0:100::", 1000) == NotGranted(
        "n:60:0:100::", "completed", completion_ratio=1.0
    )
    info = await coord.inspect("n:60:0:100::")
    assert (info.state, info.token, info.attempts) == ("completed", first.lease.token, 1)


async def test_expired_lease_is_reclaimed_with_a_higher_token(
    coord: InMemoryCoordinator, clock: ManualClock
) -> None:
    old = await _granted(coord, "k")
    clock.now += 1001
    assert (await coord.inspect("k")).state == "free"
    new = await _granted(coord, "k")
    assert new.lease.token > old.lease.token
    assert coord.expired_takeovers == 1
    # The superseded holder can change nothing.
    with pytest.raises(LeaseLost):
        await coord.complete(old.lease)
    with pytest.raises(LeaseLost):
        await coord.fail(old.lease, "x")
    with pytest.raises(LeaseLost):
        await coord.renew(old.lease, 500)
    info = await coord.inspect("k")
    assert (info.state, info.token) == ("held", new.lease.token)


async def test_renew_extends_and_expired_renew_is_lost(
    coord: InMemoryCoordinator, clock: ManualClock
) -> None:
    granted = await _granted(coord, "k", 1000)
    clock.now += 900
    renewed = await coord.renew(granted.lease, 1000)
    assert renewed.token == granted.lease.token
    assert renewed.lease_until_ms == clock.now + 1000
    clock.now += 1000
    with pytest.raises(LeaseLost, match="expired"):
        await coord.renew(renewed, 1000)


async def test_fail_makes_key_claimable_then_parks_it(coord: InMemoryCoordinator) -> None:
    tokens = []
    for attempt in (1, 2):
        granted = await _granted(coord, "k")
        tokens.append(granted.lease.token)
        result = await coord.fail(granted.lease, f"boom {attempt}")
        assert (result.parked, result.attempts, result.completion_ratio) == (False, attempt, 0.0)
    last = await _granted(coord, "k")
    result = await coord.fail(last.lease, "boom 3")
    assert result.parked is True
    assert await coord.claim("k", 1000) == NotGranted("k", "failed", completion_ratio=0.0)
    info = await coord.inspect("k")
    assert (info.state, info.attempts, info.last_reason) == ("failed", 3, "boom 3")
    assert tokens == sorted(set(tokens)) and last.lease.token > tokens[-1]


async def test_expiry_on_the_last_attempt_parks(
    coord: InMemoryCoordinator, clock: ManualClock
) -> None:
    for _ in range(3):
        await _granted(coord, "k")
        clock.now += 2000
    assert await coord.claim("k", 1000) == NotGranted("k", "failed", completion_ratio=0.0)
    assert "expired" in ((await coord.inspect("k")).last_reason or "")


async def test_job_completion_ratio(coord: InMemoryCoordinator) -> None:
    leases = []
    for shard in range(4):
        outcome = await coord.claim(f"job:{shard}", 1000, job_id="job", shards_total=4)
        assert isinstance(outcome, Granted)
        leases.append(outcome.lease)
    assert [(await coord.complete(lease)).completion_ratio for lease in leases[:3]] == [
        0.25,
        0.5,
        0.75,
    ]
    failed = await coord.fail(leases[3], "x")
    assert failed.completion_ratio == 0.75
    assert failed.job_id == "job"


async def test_shard_completed_under_another_job_counts_for_the_claiming_job(
    coord: InMemoryCoordinator,
) -> None:
    # One node's shards (the key's first part), as a backfill job's always are: a job's
    # progress is kept in its keys' partition (coordinator/store.py).
    shared, own_key = "node:60:0:60::", "node:60:60:120::"
    first = await coord.claim(shared, 1000, job_id="a", shards_total=1)
    assert isinstance(first, Granted)
    await coord.complete(first.lease)
    refused = await coord.claim(shared, 1000, job_id="b", shards_total=2)
    assert refused == NotGranted(shared, "completed", completion_ratio=0.5)
    own = await coord.claim(own_key, 1000, job_id="b", shards_total=2)
    assert isinstance(own, Granted)
    assert (await coord.complete(own.lease)).completion_ratio == 1.0


async def test_inspect_unknown_key_is_free(coord: InMemoryCoordinator) -> None:
    info = await coord.inspect("never-seen")
    assert (info.state, info.token, info.attempts) == ("free", None, 0)


@pytest.mark.parametrize(
    ("key", "lease_ms", "field"),
    [("", 1000, "key"), ("x" * 513, 1000, "key"), ("a\nb", 1000, "key"), ("k", 10, "lease_ms")],
)
async def test_bad_arguments_name_the_field(
    coord: InMemoryCoordinator, key: str, lease_ms: int, field: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await coord.claim(key, lease_ms)
    assert caught.value.argument == field


# --- idempotent retries, as on the service (issue 17, item 5) --------------------------------


async def test_a_claim_repeated_with_its_request_id_gets_the_same_lease(
    coord: InMemoryCoordinator, clock: ManualClock
) -> None:
    first = await coord.claim("k", 1000, request_id="r1")
    assert isinstance(first, Granted)
    clock.now += 500
    assert await coord.claim("k", 1000, request_id="r1") == first  # not extended either
    assert await coord.claim("k", 1000, request_id="r2") == NotGranted(
        "k", "held", first.lease.lease_until_ms, 0.0
    )
    assert await coord.claim("k", 1000) == NotGranted("k", "held", first.lease.lease_until_ms, 0.0)
    assert (await coord.inspect("k")).attempts == 1
    clock.now += 501  # the lease ran out: the id no longer names a live lease
    again = await coord.claim("k", 1000, request_id="r1")
    assert isinstance(again, Granted) and again.lease.token > first.lease.token


async def test_a_repeated_complete_answers_as_the_first(coord: InMemoryCoordinator) -> None:
    granted = await _granted(coord, "k")
    first = await coord.complete(granted.lease)
    before = await coord.inspect("k")
    assert await coord.complete(granted.lease) == first
    assert await coord.inspect("k") == before


async def test_a_repeated_fail_answers_as_the_first(coord: InMemoryCoordinator) -> None:
    for attempt in (1, 2, 3):  # max_attempts 3: the third fail parks the key
        granted = await _granted(coord, "k")
        first = await coord.fail(granted.lease, f"boom {attempt}")
        assert first.parked is (attempt == 3)
        assert await coord.fail(granted.lease, "a later reason") == first
        assert (await coord.inspect("k")).last_reason == f"boom {attempt}"


async def test_an_old_token_is_still_lost_after_a_takeover(
    coord: InMemoryCoordinator, clock: ManualClock
) -> None:
    old = await _granted(coord, "k")
    clock.now += 1001
    new = await _granted(coord, "k")
    await coord.complete(new.lease)
    with pytest.raises(LeaseLost):
        await coord.complete(old.lease)
    with pytest.raises(LeaseLost):
        await coord.fail(old.lease, "late")
    # A fail's token is not a complete's, and the other way round.
    failed_key = await _granted(coord, "f")
    await coord.fail(failed_key.lease, "x")
    with pytest.raises(LeaseLost):
        await coord.complete(failed_key.lease)


@pytest.mark.parametrize("request_id", ["", "x" * 65, "a b", "new\n"])
async def test_a_bad_request_id_names_the_field(
    coord: InMemoryCoordinator, request_id: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await coord.claim("k", 1000, request_id=request_id)
    assert caught.value.argument == "request_id"
