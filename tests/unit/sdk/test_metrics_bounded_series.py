"""BoundedSeries: a metric family labelled by caller-chosen values keeps a bounded number of
series; counters fold the overflow into `_other` (totals kept), gauges evict the least
recently set series; label values are cut to a bounded length."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from seamless.metrics import (
    MAX_LABEL_VALUE_LENGTH,
    BoundedSeries,
    SeamlessMetrics,
    bounded_label_value,
)

pytestmark = pytest.mark.unit


def samples(registry: CollectorRegistry, sample_name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels.values()): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == sample_name
    }


def test_a_counter_folds_new_label_sets_past_the_cap_into_other() -> None:
    registry = CollectorRegistry()
    completed = BoundedSeries(Counter("done", "d", ["node_id", "interval"], registry=registry), 2)
    for node in ("a", "b", "c", "d", "a", "c"):
        completed.labels(node, "60").inc()
    # The first two label sets keep their series (a counter's series never vanishes: a
    # removed one would reset for scrapers); later ones count under _other.
    assert samples(registry, "done_total") == {
        ("a", "60"): 2.0,
        ("b", "60"): 1.0,
        ("_other", "_other"): 3.0,
    }
    assert completed.series_count() == 3


def test_folding_keeps_the_labels_the_code_chooses() -> None:
    registry = CollectorRegistry()
    shards = BoundedSeries(
        Counter("shards", "s", ["node_id", "interval", "outcome"], registry=registry), 1
    )
    shards.labels(node_id="a", interval="60", outcome="completed").inc()
    shards.labels(node_id="b", interval="60", outcome="completed").inc()
    shards.labels(node_id="c", interval="60", outcome="failed").inc(2)
    assert samples(registry, "shards_total") == {
        ("a", "60", "completed"): 1.0,
        ("_other", "_other", "completed"): 1.0,
        ("_other", "_other", "failed"): 2.0,
    }


def test_a_histogram_folds_too() -> None:
    registry = CollectorRegistry()
    latency = BoundedSeries(Histogram("lat", "l", ["node_id"], registry=registry), 1)
    for node in ("a", "b", "c"):
        latency.labels(node_id=node).observe(1.0)
    assert samples(registry, "lat_count") == {("a",): 1.0, ("_other",): 2.0}


def test_a_gauge_evicts_the_least_recently_set_series() -> None:
    registry = CollectorRegistry()
    ratio = BoundedSeries(Gauge("ratio", "r", ["lease_key"], registry=registry), 3)
    for key in ("k1", "k2", "k3"):
        ratio.labels(key).set(0.1)
    ratio.labels("k1").set(0.5)  # k1 is now the most recent; k2 the oldest
    ratio.labels("k4").set(0.4)
    assert samples(registry, "ratio") == {("k1",): 0.5, ("k3",): 0.1, ("k4",): 0.4}
    ratio.labels("k5").set(1.0)
    assert set(samples(registry, "ratio")) == {("k1",), ("k4",), ("k5",)}
    assert ratio.series_count() == 3


def test_label_values_are_bounded_and_stay_distinct() -> None:
    short = "blake3:" + "f" * 64  # a QMTL node id is kept whole
    assert bounded_label_value(short) == short
    long_a, long_b = "x" * 500 + "a", "x" * 500 + "b"
    cut_a, cut_b = bounded_label_value(long_a), bounded_label_value(long_b)
    assert len(cut_a) == len(cut_b) == MAX_LABEL_VALUE_LENGTH
    assert cut_a != cut_b and cut_a.startswith("x" * 100)
    assert bounded_label_value(long_a) == cut_a  # the same value, the same series
    assert bounded_label_value(60) == "60"


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_series"):
        BoundedSeries(Counter("c", "c", ["node_id"], registry=CollectorRegistry()), 0)


def test_sdk_families_labelled_by_node_id_are_bounded() -> None:
    metrics = SeamlessMetrics(CollectorRegistry(), max_series=5)
    for i in range(50):
        series = {"node_id": f"node-{i}", "interval": "60", "world_id": f"w-{i}"}
        metrics.cache_hit_total.labels(**series).inc()
        metrics.coverage_ratio.labels(**series).set(1.0)
        metrics.observe_phase(
            node_id=f"node-{i}", interval=60, world_id="w", phase="total", duration_ms=5.0
        )
        metrics.backfill_shards_total.labels(
            node_id=f"node-{i}", interval="60", outcome="completed"
        ).inc()
        metrics.backfill_completion_ratio.labels(
            node_id=f"node-{i}", interval="60", lease_key=f"node-{i}:60:0:1::"
        ).set(1.0)
    for family in metrics.registry.collect():
        labelled = {tuple(sorted(s.labels.items())) for s in family.samples if s.labels}
        # `le` makes one series per bucket: count label sets without it.
        sets = {tuple(kv for kv in labels if kv[0] != "le") for labels in labelled}
        assert len(sets) <= 6, family.name
    assert metrics.value("seamless_cache_hit_total", {
        "node_id": "_other", "interval": "_other", "world_id": "_other"
    }) == 45  # fmt: skip
    assert metrics.value("seamless_total_ms_count", {
        "node_id": "_other", "interval": "_other", "world_id": "_other"
    }) == 45  # fmt: skip
