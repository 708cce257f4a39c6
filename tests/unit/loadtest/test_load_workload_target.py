"""The fetch mix, the load target file and the ramp shape's arithmetic."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from seamless.errors import ConfigError

from loadtest.ramp_plan import Ramp
from loadtest.target import LoadTarget, load_target
from loadtest.workload import INTERVAL, SHARD_BARS, Workload

pytestmark = pytest.mark.unit


def test_the_mix_hits_every_source_on_the_grid_and_behind_what_is_stored() -> None:
    workload = Workload(run_id="t", rng=random.Random(1))
    kinds: Counter[str] = Counter()
    for _ in range(2000):
        request = workload.next()
        kinds[request.kind] += 1
        assert request.start % INTERVAL == 0 and request.end % INTERVAL == 0
        assert request.end >= request.start
        if request.kind == "warm":
            assert request.end < workload.stored[request.node_id]
        if request.kind == "cold":
            # one whole new shard on the grid, plus half a shard already stored
            assert (request.end + INTERVAL) % (SHARD_BARS * INTERVAL) == 0
            workload.done(request)
    assert kinds["hot"] > kinds["warm"] > kinds["cold"] > 100


def test_stored_frontier_only_advances_over_contiguous_shards() -> None:
    workload = Workload(run_id="t", series=1, rng=random.Random(2))
    workload.weights = (0, 0, 1)
    first, second = workload.next(), workload.next()
    before = workload.stored[first.node_id]
    workload.done(second)
    assert workload.stored[first.node_id] == before  # a hole at `first` remains
    workload.done(first)
    assert workload.stored[first.node_id] == second.end + INTERVAL


def _target() -> LoadTarget:
    return LoadTarget(
        coordinator_url="http://127.0.0.1:8080",
        coordinator_token="t" * 20,
        questdb_dsn="postgresql://admin:quest@127.0.0.1:8812/qdb",
        questdb_ilp="http::addr=127.0.0.1:9000;",
    )


def test_target_round_trips_through_a_private_file(tmp_path: Path) -> None:
    path = _target().write(tmp_path / "target.json")
    assert path.stat().st_mode & 0o077 == 0
    assert load_target(path, env={}) == _target()
    assert "t" * 20 not in repr(_target())


def test_pulumi_stack_outputs_are_a_target_and_env_wins(tmp_path: Path) -> None:
    outputs = {
        "endpoints": {},
        "sdkConfig": {
            "seamless": {
                "coordinator_url": "http://seamless-coordinator:8080",
                "coordinator_token": "secret-token-value",
                "questdb_dsn": "postgresql://admin:quest@questdb:8812/qmtl",
            }
        },
    }
    path = tmp_path / "out.json"
    path.write_text(json.dumps(outputs))
    target = load_target(path, env={"QMTL_SEAMLESS_COORDINATOR_URL": "http://10.0.0.5:8080"})
    assert target.coordinator_url == "http://10.0.0.5:8080"
    assert target.questdb_ilp == "http::addr=questdb:9000;"


def test_missing_and_bad_values_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("seamless: {coordinator_url: 'http://x:1', questdb_dsn: 'postgresql://h/db'}")
    with pytest.raises(ConfigError, match=r"coordinator_token .*missing"):
        load_target(path, env={})
    path.write_text("seamless: {coordinator_url: 'x', coordinator_token: 'a', questdb_dsn: 'b'}")
    with pytest.raises(ConfigError, match=r"coordinator_url .*not a URL"):
        load_target(path, env={})


def test_ramp_climbs_holds_and_ends() -> None:
    ramp = Ramp(peak_users=100, up_s=10, hold_s=5, down_s=5)
    assert ramp.users_at(0) == 1
    assert ramp.users_at(5) == 50
    assert ramp.users_at(12) == 100
    assert ramp.users_at(17.5) == 50
    assert ramp.users_at(20) is None
    assert ramp.spawn_rate() >= 100 / 5
    with pytest.raises(ValueError, match="expected peak >= 1"):
        Ramp(0, 1, 1, 1)
