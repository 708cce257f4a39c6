"""infra/observability: alert rules and dashboards query only metrics the SDK emits."""

from __future__ import annotations

import re
import subprocess

import pytest

from infra.observability import (
    exprs_of_dashboards,
    exprs_of_rules,
    load_alert_rules,
    load_dashboards,
    metric_names,
)
from tests.infra.harness import ROOT

pytestmark = pytest.mark.infra


def emitted_metric_names() -> set[str]:
    """Metric names the seamless package defines (Counter/Gauge/Histogram first argument)."""
    names: set[str] = set()
    for path in (ROOT / "sdk" / "src" / "seamless").rglob("*.py"):
        text = path.read_text()
        names.update(
            re.findall(
                r"(?:Counter|Gauge|Histogram|Summary)\(\s*f?\"([a-z_:][a-z0-9_:{}]*)\"", text
            )
        )
    expanded = set()
    for name in names:
        if "{phase}" in name:  # f"seamless_{phase}_ms" over the four phases
            expanded.update(
                name.replace("{phase}", p)
                for p in ("storage_wait", "backfill_wait", "live_wait", "total")
            )
        else:
            expanded.add(name)
    # prometheus-client exposes counters with a _total suffix; the code may define either form
    return expanded | {n + "_total" for n in expanded if not n.endswith("_total")}


def test_emitted_metric_scan_finds_the_known_names() -> None:
    names = emitted_metric_names()
    assert {
        "backfill_completion_ratio",
        "seamless_sla_deadline_seconds",
        "seamless_total_ms",
    } <= names


def test_alert_rules_reference_only_emitted_metrics() -> None:
    rules = load_alert_rules()
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "SeamlessSlaP99Degraded",
        "SeamlessBackfillStuckLease",
        "SeamlessConformanceFlagSpike",
        "SeamlessSchemaValidationFailures",
    } <= alerts
    emitted = emitted_metric_names()
    for expr in exprs_of_rules(rules):
        used = metric_names(expr)
        assert used, expr
        assert used <= emitted, f"{sorted(used - emitted)} not emitted by sdk/src/seamless"
    promtool = ROOT / ".tools" / "bin" / "promtool"
    if promtool.exists():  # built by scripts/promtool.sh when the Go proxy can serve it
        rules_file = str(ROOT / "infra/observability/alerts.yaml")
        proc = subprocess.run(
            [str(promtool), "check", "rules", rules_file],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboards_reference_only_emitted_metrics() -> None:
    dashboards = load_dashboards()
    assert set(dashboards) == {"sla-overview.json", "coordinator-health.json"}
    emitted = emitted_metric_names()
    exprs = exprs_of_dashboards(dashboards.values())
    assert len(exprs) >= 15
    for expr in exprs:
        used = metric_names(expr)
        assert used, expr
        assert used <= emitted, f"{sorted(used - emitted)} not emitted by sdk/src/seamless"


def test_metric_name_extraction_catches_an_unknown_metric() -> None:
    assert metric_names('sum by (node_id) (rate(made_up_metric_bucket{x="y"}[5m])) > 0.5') == {
        "made_up_metric"
    }
    assert not metric_names("sum(rate(backfill_retry_total[5m]))") - emitted_metric_names()


def test_promql_in_rules_has_balanced_brackets() -> None:
    # A stand-in syntax check used when promtool cannot be built here (see docs/deploy.md).
    for expr in exprs_of_rules(load_alert_rules()) + exprs_of_dashboards(
        load_dashboards().values()
    ):
        for open_, close in ("()", "[]", "{}"):
            assert expr.count(open_) == expr.count(close), expr
