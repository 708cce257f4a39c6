"""Observability assets the bundle deploys: a Prometheus scrape config rendered from the
catalog, alert rules (`alerts.yaml`) and Grafana dashboards (`dashboards/*.json`).

Plain data and pure functions; the platforms turn them into ConfigMaps (Kubernetes) or
files of the dev Prometheus container (Docker).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.catalog import Catalog

ASSETS_DIR = Path(__file__).parent
ALERTS_FILE = ASSETS_DIR / "alerts.yaml"
DASHBOARDS_DIR = ASSETS_DIR / "dashboards"


@dataclass(frozen=True)
class ObservabilityAssets:
    scrape_config_yaml: str
    alert_rules_yaml: str
    dashboards_json: Mapping[str, str]  # file name -> dashboard JSON


def scrape_config(catalog: Catalog) -> dict[str, Any]:
    """One scrape job per service that serves metrics.

    Kubernetes: pod discovery in the bundle's namespace, kept to the service's pods by label
    (the pods also carry prometheus.io/* annotations). Docker: static targets on the
    bundle's network.
    """
    jobs: list[dict[str, Any]] = []
    k8s = catalog.config.platform == "kubernetes"
    for svc in catalog:
        if svc.metrics_port is None:
            continue
        job: dict[str, Any] = {"job_name": f"seamless/{svc.name}", "metrics_path": svc.metrics_path}
        if k8s:
            job["kubernetes_sd_configs"] = [
                {"role": "pod", "namespaces": {"names": [catalog.config.namespace]}}
            ]
            job["relabel_configs"] = [
                {
                    "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                    "regex": svc.name,
                    "action": "keep",
                },
                {
                    "source_labels": ["__address__"],
                    "regex": r"([^:]+)(?::\d+)?",
                    "replacement": f"$1:{svc.metrics_port}",
                    "target_label": "__address__",
                },
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ]
        else:
            job["static_configs"] = [{"targets": [f"{svc.name}:{svc.metrics_port}"]}]
        jobs.append(job)
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "30s"},
        "rule_files": ["/etc/prometheus/rules/*.yml"],
        "scrape_configs": jobs,
    }


def load_alert_rules() -> dict[str, Any]:
    data = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def load_dashboards() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def build_assets(catalog: Catalog) -> ObservabilityAssets:
    return ObservabilityAssets(
        scrape_config_yaml=yaml.safe_dump(scrape_config(catalog), sort_keys=False),
        alert_rules_yaml=ALERTS_FILE.read_text(encoding="utf-8"),
        dashboards_json=load_dashboards(),
    )


# PromQL words that are not metric names.
_PROMQL_WORDS = frozenset(
    {
        "sum", "min", "max", "avg", "count", "by", "without", "rate", "irate", "increase",
        "histogram_quantile", "min_over_time", "max_over_time", "avg_over_time", "clamp_min",
        "clamp_max", "bottomk", "topk", "and", "or", "unless", "on", "ignoring", "le",
        "offset", "bool", "abs", "time", "vector", "scalar",
    }
)  # fmt: skip
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (histogram series map to their base name)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_strings = re.sub(r'"[^"]*"', "", without_labels)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", without_ranges):
        word = match.group(1)
        if without_ranges[match.end() :].lstrip().startswith("("):
            continue  # a function call, not a metric
        if word in _PROMQL_WORDS:
            continue
        # label names inside by (...)/without (...) clauses
        if re.search(rf"(by|without)\s*\([^)]*\b{re.escape(word)}\b[^)]*\)", without_ranges):
            continue
        for suffix in _HISTOGRAM_SUFFIXES:
            if word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        names.add(word)
    return names


def exprs_of_dashboards(dashboards: Iterable[str]) -> list[str]:
    import json

    exprs: list[str] = []
    for text in dashboards:
        for panel in json.loads(text).get("panels", []):
            exprs.extend(t["expr"] for t in panel.get("targets", []))
    return exprs


def exprs_of_rules(rules: Mapping[str, Any]) -> list[str]:
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
