"""Schema registry governance without a server: compatibility rules, the in-process
registry, and the conformance pipeline's schema stage in canary and strict."""

from __future__ import annotations

import httpx
import polars as pl
import pytest
from prometheus_client import CollectorRegistry
from seamless.data.bars import BAR_SCHEMA
from seamless.data.conformance import ConformancePipeline
from seamless.data.schema_registry import (
    BarSchema,
    FieldSpec,
    InMemorySchemaRegistry,
    RemoteSchemaRegistry,
    SchemaStage,
    compatibility,
)
from seamless.errors import SchemaRegistryError, SchemaRegistryUnavailable, SchemaValidationError
from seamless.metrics import SeamlessMetrics

pytestmark = pytest.mark.unit

BARS = BarSchema.from_dtypes(BAR_SCHEMA)
FAILURES = "seamless_schema_validation_failures_total"


def _frame(**overrides: pl.Series) -> pl.DataFrame:
    data = {
        "ts": pl.Series([0, 60], dtype=pl.Int64),
        **{c: pl.Series([1.0, 2.0]) for c in ("open", "high", "low", "close", "volume")},
    }
    data.update(overrides)
    return pl.DataFrame(data)


def test_removed_or_retyped_field_breaks_added_optional_does_not() -> None:
    fields = list(BARS.fields)
    removed = BarSchema(tuple(f for f in fields if f.name != "volume"))
    retyped = BarSchema(
        tuple(FieldSpec(f.name, "string") if f.name == "close" else f for f in fields)
    )
    optional = BarSchema((*fields, FieldSpec("vwap", "number", required=False)))
    required = BarSchema((*fields, FieldSpec("vwap", "number")))
    assert compatibility(BARS, removed).breaking == ("field 'volume' removed",)
    assert compatibility(BARS, retyped).breaking == ("field 'close' retyped number -> string",)
    assert compatibility(BARS, optional).compatible
    assert compatibility(BARS, optional).added == ("vwap",)
    assert not compatibility(BARS, required).compatible


def test_schema_json_round_trips_and_bad_documents_are_refused() -> None:
    assert BarSchema.from_json(BARS.to_json()).by_name() == BARS.by_name()
    for bad in ("not json", "{}", '{"properties": {"a b": {"type": "number"}}}'):
        with pytest.raises(SchemaRegistryError):
            BarSchema.from_json(bad)


def test_in_memory_registry_versions_ids_and_idempotent_register() -> None:
    registry = InMemorySchemaRegistry()
    first = registry.register("seamless.bars", BARS)
    again = registry.register("seamless.bars", BARS)
    optional = BarSchema((*BARS.fields, FieldSpec("vwap", "number", required=False)))
    second = registry.register("seamless.bars", optional)
    assert (first.version, again.version, second.version) == (1, 1, 2)
    assert registry.by_id(first.id) == BARS
    latest = registry.latest("seamless.bars")
    assert latest is not None and latest.version == 2
    registry.delete_version("seamless.bars", 2)
    latest = registry.latest("seamless.bars")
    assert latest is not None and latest.version == 1
    with pytest.raises(ValueError, match="subject"):
        registry.latest("../etc/passwd")


def _stage(mode: str, registry: InMemorySchemaRegistry | None = None) -> SchemaStage:
    if registry is None:
        registry = InMemorySchemaRegistry()
        registry.register("seamless.bars", BARS)
    metrics = SeamlessMetrics(CollectorRegistry())
    return SchemaStage(registry, subject="seamless.bars", mode=mode, metrics=metrics)  # type: ignore[arg-type]


def test_canary_records_counts_and_never_blocks() -> None:
    stage = _stage("canary")
    pipeline = ConformancePipeline(partial_ok=False, schema_stage=stage)
    bad = _frame(close=pl.Series(["1", "2"]))
    _, report = pipeline.normalize(bad, interval=60)
    assert report.schema is not None and report.schema.violations == [
        "field 'close': expected number, got String"
    ]
    assert stage.metrics.value(FAILURES, {"subject": "seamless.bars", "mode": "canary"}) == 1
    good, clean = pipeline.check(_frame(), interval=60)
    assert clean.schema is not None and not clean.schema.failed and good.height == 2


def test_strict_raises_schema_validation_error_naming_the_field() -> None:
    stage = _stage("strict")
    pipeline = ConformancePipeline(partial_ok=True, schema_stage=stage)
    with pytest.raises(SchemaValidationError, match="field 'volume'"):
        pipeline.normalize(_frame().drop("volume"), interval=60)
    assert stage.metrics.value(FAILURES, {"subject": "seamless.bars", "mode": "strict"}) == 1


class _DownRegistry(InMemorySchemaRegistry):
    url = "http://registry.invalid:8081"

    def latest(self, subject: str) -> None:
        raise SchemaRegistryUnavailable(f"schema registry {self.url} unreachable", url=self.url)


def test_unreachable_registry_canary_serves_strict_blocks() -> None:
    canary = _stage("canary", _DownRegistry())
    _, report = ConformancePipeline(schema_stage=canary).normalize(_frame(), interval=60)
    assert report.schema is not None and "unreachable" in (report.schema.error or "")
    strict = _stage("strict", _DownRegistry())
    with pytest.raises(SchemaValidationError, match=r"registry\.invalid:8081 unreachable"):
        ConformancePipeline(schema_stage=strict).normalize(_frame(), interval=60)


def test_approved_schema_is_cached_for_the_ttl() -> None:
    now = [0.0]
    registry = InMemorySchemaRegistry()
    registry.register("seamless.bars", BARS)
    stage = SchemaStage(
        registry,
        subject="seamless.bars",
        metrics=SeamlessMetrics(CollectorRegistry()),
        cache_ttl_s=30,
        clock=lambda: now[0],
    )
    assert stage.approved()[0] is not None
    registry.delete_version("seamless.bars", 1)
    assert stage.approved()[0] is not None  # cached
    now[0] = 31
    assert stage.approved()[0] is None


def test_remote_latest_falls_back_to_the_newest_listed_version() -> None:
    """Apicurio 2.0.x answers 404 for `latest` after the newest version was deleted (a
    rollback); the client reads the newest remaining version instead of "no schema"."""
    text = BARS.to_json()

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/versions/latest"):
            return httpx.Response(404, json={"error_code": 40401, "message": "not found"})
        if path == "/subjects/s.a/versions":
            return httpx.Response(200, json=[1])
        if path == "/subjects/s.a/versions/1":
            body = {"subject": "s.a", "version": 1, "id": 7, "schema": text}
            return httpx.Response(200, json=body)
        return httpx.Response(404, json={"error_code": 40401, "message": "not found"})

    client = RemoteSchemaRegistry("http://registry", transport=httpx.MockTransport(answer))
    found = client.latest("s.a")
    assert found is not None and (found.version, found.id) == (1, 7)
    assert client.latest("s.none") is None
    client.close()
