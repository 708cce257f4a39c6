"""The fetch mix: which ranges the SDK users ask for, so a run exercises every source.

Each series has a *frontier*: the bars before it have been backfilled. Requests come in
three kinds, by weight:

- ``hot``: a few fixed windows per series, asked again and again: in-memory cache hits
  (the first ask of each, and each one after the cache TTL, reads storage);
- ``warm``: a random window of mixed size behind the frontier: storage reads;
- ``cold``: the next shard beyond the frontier plus half a shard behind it: a backfill of
  one shard through the coordinator, overlapping what is already stored. Concurrent cold
  requests on one series overlap each other, so the coordinator's leases decide who fetches.

Sizes are a mix of 60, 240, 900 and 3,600 bars of one minute. Everything is on the
interval grid, so the provider accepts every request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["hot", "warm", "cold"]
INTERVAL = 60  # one-minute bars
SHARD_BARS = 900  # the SDK's default backfill window
# The first bar of every series, 2020-01-01T12:00Z: on the shard grid (anchored at 0), so
# every cold request backfills exactly one whole shard.
EPOCH = 29_220 * SHARD_BARS * INTERVAL
WARM_SIZES = (60, 240, 900, 3_600)
HOT_SIZES = (60, 240, 900, 240)


@dataclass(frozen=True)
class FetchRequest:
    kind: Kind
    node_id: str
    start: int
    end: int

    @property
    def bars(self) -> int:
        return (self.end - self.start) // INTERVAL + 1


@dataclass
class Workload:
    run_id: str
    series: int = 8
    seed_shards: int = 4  # shards per series backfilled before the load starts
    weights: tuple[int, int, int] = (50, 42, 8)  # hot, warm, cold
    rng: random.Random = field(default_factory=random.Random)
    # node_id -> first bar no cold request has asked for yet
    frontier: dict[str, int] = field(default_factory=dict)
    # node_id -> first bar not known to be stored (warm reads stay before it)
    stored: dict[str, int] = field(default_factory=dict)
    _done: dict[str, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.series < 1 or self.seed_shards < 4:
            raise ValueError(
                f"series={self.series}, seed_shards={self.seed_shards}: expected series >= 1 "
                "and seed_shards >= 4 (the largest warm window is 4 shards)"
            )
        for node in self.nodes:
            self.frontier.setdefault(node, EPOCH + self.seed_shards * SHARD_BARS * INTERVAL)
            self.stored.setdefault(node, self.frontier[node])
            self._done.setdefault(node, set())

    @property
    def nodes(self) -> list[str]:
        return [f"load-{self.run_id}-s{i}" for i in range(self.series)]

    def seed_requests(self) -> list[FetchRequest]:
        """One request per series covering its seeded region (run before the load)."""
        return [
            FetchRequest("cold", node, EPOCH, self.stored[node] - INTERVAL) for node in self.nodes
        ]

    def hot_windows(self, node: str) -> list[FetchRequest]:
        windows = []
        for i, size in enumerate(HOT_SIZES):
            start = EPOCH + i * SHARD_BARS * INTERVAL
            windows.append(FetchRequest("hot", node, start, start + (size - 1) * INTERVAL))
        return windows

    def next(self) -> FetchRequest:
        kind: Kind = self.rng.choices(("hot", "warm", "cold"), weights=self.weights)[0]
        node = self.rng.choice(self.nodes)
        if kind == "hot":
            return self.rng.choice(self.hot_windows(node))
        if kind == "warm":
            size = self.rng.choice(WARM_SIZES)
            stored_bars = (self.stored[node] - EPOCH) // INTERVAL
            first = self.rng.randrange(0, stored_bars - size + 1)
            start = EPOCH + first * INTERVAL
            return FetchRequest("warm", node, start, start + (size - 1) * INTERVAL)
        frontier = self.frontier[node]
        start = frontier - (SHARD_BARS // 2) * INTERVAL
        end = frontier + (SHARD_BARS - 1) * INTERVAL
        # the next shard is now being backfilled; later cold requests move on past it
        self.frontier[node] = frontier + SHARD_BARS * INTERVAL
        return FetchRequest("cold", node, start, end)

    def done(self, request: FetchRequest) -> None:
        """A cold request succeeded: its new shard is stored. Warm reads may use it once
        every shard before it is stored too."""
        if request.kind != "cold":
            return
        done = self._done[request.node_id]
        done.add(request.end + INTERVAL)
        shard_s = SHARD_BARS * INTERVAL
        while self.stored[request.node_id] + shard_s in done:
            self.stored[request.node_id] += shard_s
            done.discard(self.stored[request.node_id])
