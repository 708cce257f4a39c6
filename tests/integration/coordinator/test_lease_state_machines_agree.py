"""The in-memory coordinator and the service agree (issue 17, item 9: one lease state machine).

A hypothesis state machine drives random sequences of claim (fresh or replayed request
ids, with or without a job), renew, complete, fail, recover (forced or not), inspect and
time advances over a few keys against both:

- `InMemoryCoordinator`: the Lua scripts through `LeaseStore` on an in-process fakeredis,
  its clock moved by hand;
- the service: `CoordinatorClient` -> the real ASGI app -> `LeaseStore` -> the session's
  real redis-server.

Every operation must have the same outcome on both, and both must keep the invariants:
fencing tokens strictly increase per key, a claim is never granted while another lease on
the key is live, and renew/complete/fail never succeed with a token other than the key's
latest. Each lease ever granted stays usable by the rules, so superseded holders keep
presenting stale tokens.

Time: the real Redis clock cannot be moved, so an advance of `d` on the service side
subtracts `d` from every lease's end (the hash's `until` and its `idx:held` score), which is
all the scripts compare the clock with (rate limiting is off). Lease lengths and advances
are whole multiples of UNIT (10 s), so a lease's remaining time is k * UNIT on the memory
side and k * UNIT minus the real time the example has taken (well under a second) on the
service side: both agree on live (k > 0) or ran out (k <= 0), and times compare as whole
units remaining. Tokens compare by which grant issued them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pytest
from coordinator_testkit import AS_OPERATOR, TOKEN, AppFactory, LiveApp
from httpx import ASGITransport
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    multiple,
    rule,
    run_state_machine_as_test,
)
from seamless.coordination.client import CoordinatorClient
from seamless.coordination.interface import Granted, NotGranted
from seamless.coordination.memory import InMemoryCoordinator
from seamless.coordination.protocol import Lease, LeaseInfo
from seamless.coordinator.store import Recovered, Refused
from seamless.errors import LeaseLost

pytestmark = pytest.mark.integration

UNIT = 10_000  # ms
HOLDER = "agreement-worker"
KEYS = range(2)
JOBS = (None, ("ja", 2), ("ja", None), ("jb", 3))
MAX_ATTEMPTS = 3  # the make_app fixture's

# Time passes on the service side: ARGV[1] ms come off the end of every lease hash in KEYS
# and of every lease in the held index (the last key).
SHIFT_LEASE_ENDS = """
local d = tonumber(ARGV[1])
local held = KEYS[#KEYS]
for i = 1, #KEYS - 1 do
  local h = KEYS[i]
  local untl = redis.call('HGET', h, 'until')
  if untl then
    redis.call('HSET', h, 'until', string.format('%.0f', tonumber(untl) - d))
  end
end
for _, member in ipairs(redis.call('ZRANGE', held, 0, -1)) do
  redis.call('ZINCRBY', held, -d, member)
end
return 0
"""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Pair:
    """One grant, as each side issued it."""

    memory: Lease
    service: Lease


class Sides:
    """What every example shares: one event loop and one service app on the real Redis."""

    loop: asyncio.AbstractEventLoop
    live: LiveApp
    client: CoordinatorClient
    examples: Iterator[int] = itertools.count()


class LeaseMachines(RuleBasedStateMachine):
    sides: ClassVar[Sides]
    leases = Bundle("leases")

    def __init__(self) -> None:
        super().__init__()
        self.tag = f"agree{next(self.sides.examples)}"
        self.clock_ms = int(time.time() * 1000)
        self.memory = InMemoryCoordinator(
            max_attempts=MAX_ATTEMPTS, holder=HOLDER, clock_ms=lambda: self.clock_ms
        )
        self.request_ids: list[str] = []
        # Per side: (key, token) -> which grant issued it (its index in `grants`). Tokens
        # are per key: two keys claimed at the same clock reading get the same token.
        self.grants: list[Pair] = []
        self.labels: tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]] = ({}, {})
        # The model both sides must keep, from the memory side's answers: per key the
        # latest token label and the end of its live lease (None once finished).
        self.latest: dict[str, int] = {}
        self.live_until: dict[str, int | None] = {}

    # --- plumbing ---------------------------------------------------------------------------

    def run(self, coro: Awaitable[_T]) -> _T:
        return self.sides.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def both(self, memory: Awaitable[_T], service: Awaitable[_T]) -> tuple[Any, Any]:
        """Each side's call run in turn: its result, or the LeaseLost it raised."""
        return self.run(_or_lost(memory)), self.run(_or_lost(service))

    def key(self, index: int) -> str:
        return f"{self.tag}:k{index}"

    async def _service_now_ms(self) -> int:
        seconds, micros = await self.sides.live.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def units_left(self, until: int | None, side: int) -> int | None:
        if until is None:
            return None
        now = self.clock_ms if side == 0 else self.run(self._service_now_ms())
        return round((until - now) / UNIT)

    def label(self, key: str, token: int | None, side: int) -> int | str | None:
        if token is None:
            return None
        return self.labels[side].get((key, token), "unknown token")

    def normal(self, outcome: Any, side: int) -> Any:
        """An outcome with tokens as grant labels and times as whole units remaining."""
        if isinstance(outcome, LeaseLost):
            reason = outcome.reason.replace(str(outcome.token), "<token>")
            return ("lost", outcome.key, self.label(outcome.key, outcome.token, side), reason)
        if isinstance(outcome, Granted):
            return ("granted", self.normal(outcome.lease, side), outcome.completion_ratio)
        if isinstance(outcome, NotGranted):
            left = self.units_left(outcome.lease_until_ms, side)
            return ("refused", outcome.key, outcome.reason, left, outcome.completion_ratio)
        if isinstance(outcome, Lease):
            left = self.units_left(outcome.lease_until_ms, side)
            token = self.label(outcome.key, outcome.token, side)
            return ("lease", outcome.key, token, left, outcome.holder)
        if isinstance(outcome, LeaseInfo):
            # `client` is the bearer identity on the service, none in memory: not compared.
            fields = outcome.model_dump(exclude={"client", "token", "lease_until_ms"})
            left = self.units_left(outcome.lease_until_ms, side)
            return ("info", fields, self.label(outcome.key, outcome.token, side), left)
        return outcome  # RatioResponse and plain tuples compare as they are

    def agree(self, memory: Any, service: Any) -> Any:
        m, s = self.normal(memory, 0), self.normal(service, 1)
        assert m == s, f"memory {memory!r}\n!= service {service!r}"
        return memory

    # --- rules ------------------------------------------------------------------------------

    @rule(
        target=leases,
        index=st.sampled_from(KEYS),
        units=st.integers(1, 3),
        job=st.sampled_from(JOBS),
        replay=st.one_of(st.none(), st.integers(0, 7)),
    )
    def claim(
        self, index: int, units: int, job: tuple[str, int | None] | None, replay: int | None
    ) -> Any:
        key = self.key(index)
        if replay is not None and self.request_ids:
            request_id = self.request_ids[replay % len(self.request_ids)]
        else:
            request_id = f"{self.tag}-r{len(self.request_ids)}"
            self.request_ids.append(request_id)
        job_id, shards = (f"{self.tag}-{job[0]}", job[1]) if job else (None, None)
        lease_ms, extra = units * UNIT, {"job_id": job_id, "shards_total": shards}
        memory, service = self.both(
            self.memory.claim(key, lease_ms, request_id=request_id, **extra),
            self.sides.client.claim(key, lease_ms, request_id=request_id, **extra),
        )
        if not isinstance(memory, Granted) or not isinstance(service, Granted):
            self.agree(memory, service)
            if isinstance(memory, NotGranted) and memory.reason == "held":
                until = self.live_until.get(key)
                assert until is not None and until > self.clock_ms, "held, yet no live lease"
            self.inspect_key(key)
            return multiple()
        tokens = ((key, memory.lease.token), (key, service.lease.token))
        if tokens[0] in self.labels[0]:  # a replay: the same lease again, on both sides
            self.agree(memory, service)
            assert self.labels[0][tokens[0]] == self.labels[1].get(tokens[1])
            self.inspect_key(key)
            return multiple()
        for side, (_, token) in enumerate(tokens):
            earlier = [t for k, t in self.labels[side] if k == key]
            assert all(token > t for t in earlier), "tokens must strictly increase per key"
            self.labels[side][key, token] = len(self.grants)
        until = self.live_until.get(key)
        assert until is None or until <= self.clock_ms, "granted while another lease is live"
        self.grants.append(Pair(memory.lease, service.lease))
        self.agree(memory, service)
        self.latest[key] = len(self.grants) - 1
        self.live_until[key] = memory.lease.lease_until_ms
        self.inspect_key(key)
        return Pair(memory.lease, service.lease)

    def _succeeded_with(self, pair: Pair) -> None:
        """renew/complete/fail succeeded: only ever with the key's latest token."""
        key = pair.memory.key
        label = self.labels[0][key, pair.memory.token]
        assert label == self.latest[key], "a stale token succeeded"

    @rule(pair=leases, units=st.integers(1, 3))
    def renew(self, pair: Pair, units: int) -> None:
        memory, service = self.both(
            self.memory.renew(pair.memory, units * UNIT),
            self.sides.client.renew(pair.service, units * UNIT),
        )
        self.agree(memory, service)
        if isinstance(memory, Lease):
            self._succeeded_with(pair)
            self.live_until[pair.memory.key] = memory.lease_until_ms
        self.inspect_key(pair.memory.key)

    @rule(pair=leases)
    def complete(self, pair: Pair) -> None:
        memory, service = self.both(
            self.memory.complete(pair.memory), self.sides.client.complete(pair.service)
        )
        self.agree(memory, service)
        if not isinstance(memory, LeaseLost):
            self._succeeded_with(pair)
            self.live_until[pair.memory.key] = None
        self.inspect_key(pair.memory.key)

    @rule(pair=leases, reason=st.sampled_from(["boom", "timeout"]))
    def fail(self, pair: Pair, reason: str) -> None:
        memory, service = self.both(
            self.memory.fail(pair.memory, reason), self.sides.client.fail(pair.service, reason)
        )
        self.agree(memory, service)
        if not isinstance(memory, LeaseLost):
            self._succeeded_with(pair)
            self.live_until[pair.memory.key] = None
        self.inspect_key(pair.memory.key)

    @rule(index=st.sampled_from(KEYS), force=st.booleans())
    def recover(self, index: int, force: bool) -> None:
        key = self.key(index)
        result = self.run(_recover(self.memory, key, force))
        if isinstance(result, Recovered):
            memory: Any = ("recovered", result.previous_state)
        else:
            assert isinstance(result, Refused), result
            memory = ("refused", result.reason)
        response = self.run(
            self.sides.live.client.post(
                "/v1/leases/recover",
                json={"key": key, "force": force},
                headers=AS_OPERATOR if force else {},
            )
        )
        body = response.json()
        service = {
            200: ("recovered", body.get("previous_state")),
            409: ("refused", body.get("reason")),
        }.get(response.status_code, (response.status_code, body))
        self.agree(memory, service)
        if memory[0] == "recovered":
            self.live_until[key] = None
        self.inspect_key(key)

    def inspect_key(self, key: str) -> None:
        """Every change ends with both sides reading the key the same."""
        self.agree(*self.both(self.memory.inspect(key), self.sides.client.inspect(key)))

    @rule(units=st.integers(1, 3))
    def advance(self, units: int) -> None:
        self.clock_ms += units * UNIT
        space = self.sides.live.keys
        # All keys share their node ("agree1"), so one partition and one held index.
        hashes = [space.lease(self.key(i)) for i in KEYS]
        keys = [*hashes, self.sides.live.held_index(self.key(0))]
        shift = self.sides.live.redis.eval(SHIFT_LEASE_ENDS, len(keys), *keys, units * UNIT)
        self.run(shift)  # type: ignore[arg-type]
        for index in KEYS:
            self.inspect_key(self.key(index))

    def teardown(self) -> None:
        self.run(self.memory.aclose())


async def _recover(memory: InMemoryCoordinator, key: str, force: bool) -> Any:
    # The dev coordinator has no recover of its own: its store's, as the service's route
    # runs it (one client: no role to check).
    return await memory.store.recover(key, force=force, identity="")


async def _or_lost(call: Awaitable[_T]) -> _T | LeaseLost:
    try:
        return await call
    except LeaseLost as exc:
        return exc


def test_the_in_memory_coordinator_and_the_service_agree(make_app: AppFactory) -> None:
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        sides = Sides()
        sides.loop = loop
        sides.live = loop.run_until_complete(stack.enter_async_context(make_app()))
        sides.client = CoordinatorClient(
            "http://coordinator",
            token=TOKEN,
            worker_id=HOLDER,
            transport=ASGITransport(app=sides.live.app),
        )
        stack.push_async_callback(sides.client.aclose)
        LeaseMachines.sides = sides
        run_state_machine_as_test(
            LeaseMachines,
            settings=settings(
                max_examples=150,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
