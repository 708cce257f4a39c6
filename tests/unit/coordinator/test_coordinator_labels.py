"""Metric labels derived from QMTL's key format, and the bounded ratio series."""

from __future__ import annotations

import pytest
from seamless.coordinator.metrics import CoordinatorMetrics, key_labels

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("key", "labels"),
    [
        ("node:10:0:100::", ("node", "10")),
        ("btc-1m:60:0:3600:world-1:2025-01-01T00:00:00", ("btc-1m", "60")),
        ("lonely", ("lonely", "unknown")),
        (":60:0:1::", ("unknown", "60")),
        ("node::0:1::", ("node", "unknown")),
    ],
)
def test_key_labels_follow_qmtl(key: str, labels: tuple[str, str]) -> None:
    assert key_labels(key) == labels


def test_completion_ratio_series_are_bounded() -> None:
    metrics = CoordinatorMetrics(max_series=3)
    for i in range(5):
        metrics.set_completion_ratio(f"n:60:{i}:{i}::", i / 10)
    registry = metrics.registry
    kept = [
        s.labels["lease_key"]
        for family in registry.collect()
        if family.name == "backfill_completion_ratio"
        for s in family.samples
    ]
    assert kept == ["n:60:2:2::", "n:60:3:3::", "n:60:4:4::"]
    assert registry.get_sample_value(
        "backfill_completion_ratio", {"node_id": "n", "interval": "60", "lease_key": "n:60:4:4::"}
    ) == pytest.approx(0.4)
