"""The SDK's registry client and schema stage against a real Confluent-compatible registry
(Apicurio Registry's ccompat API, run by lab/registry.py), and a data-provider fetch through
real QuestDB in canary and strict."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import CollectorRegistry
from seamless.coordination.memory import InMemoryCoordinator
from seamless.data.bars import BAR_SCHEMA
from seamless.data.conformance import ConformancePipeline
from seamless.data.provider import SeamlessDataProvider, Strategy
from seamless.data.schema_registry import BarSchema, FieldSpec, RemoteSchemaRegistry, SchemaStage
from seamless.data.storage import QuestDBBarStore
from seamless.errors import SchemaRegistryError, SchemaRegistryUnavailable, SchemaValidationError
from seamless.metrics import SeamlessMetrics
from seamless.testing import SyntheticFetcher

from lab.registry import SchemaRegistryServer
from lab.servers import QuestDBServer, free_port

pytestmark = pytest.mark.integration

BARS = BarSchema.from_dtypes(BAR_SCHEMA)
IV = 60
FAILURES = "seamless_schema_validation_failures_total"


def _subject() -> str:
    return f"test.bars-{secrets.token_hex(4)}"


@pytest.fixture
def registry(schema_registry_server: SchemaRegistryServer) -> Iterator[RemoteSchemaRegistry]:
    client = RemoteSchemaRegistry(schema_registry_server.url)
    yield client
    client.close()


def test_register_latest_version_id_and_delete(registry: RemoteSchemaRegistry) -> None:
    subject = _subject()
    assert registry.latest(subject) is None
    first = registry.register(subject, BARS)
    assert registry.register(subject, BARS) == first  # idempotent, as Confluent's
    optional = BarSchema((*BARS.fields, FieldSpec("vwap", "number", required=False)))
    second = registry.register(subject, optional)
    assert (first.version, second.version) == (1, 2)
    assert registry.versions(subject) == [1, 2]
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 2 and latest.id == second.id
    by_id = registry.by_id(first.id)
    assert by_id is not None and by_id.by_name() == BARS.by_name()
    registry.delete_version(subject, 2)
    latest = registry.latest(subject)
    assert latest is not None and latest.version == 1


def test_refusals_and_outages_name_url_and_status(
    registry: RemoteSchemaRegistry, schema_registry_server: SchemaRegistryServer
) -> None:
    with pytest.raises(SchemaRegistryError) as refused:
        registry.delete_version(_subject(), 7)
    assert refused.value.status == 404
    assert schema_registry_server.url in str(refused.value) and "HTTP 404" in str(refused.value)
    down = f"http://ops:pw-secret@127.0.0.1:{free_port()}"
    client = RemoteSchemaRegistry(down, timeout_s=1.0)
    with pytest.raises(SchemaRegistryUnavailable) as unreachable:
        client.latest("seamless.bars")
    text = str(unreachable.value)
    assert "unreachable" in text and "ops:***@127.0.0.1" in text and "pw-secret" not in text
    client.close()


@pytest.fixture
async def store(questdb_server: QuestDBServer) -> AsyncIterator[QuestDBBarStore]:
    prefix = f"seamless_s{secrets.token_hex(4)}_"
    s = QuestDBBarStore(questdb_server.pg_dsn, questdb_server.ilp_http_conf, table_prefix=prefix)
    yield s
    await s.aclose()


def _provider(store: QuestDBBarStore, stage: SchemaStage) -> SeamlessDataProvider:
    return SeamlessDataProvider(
        store=store,
        fetcher=SyntheticFetcher(seed=5, schema_faults=frozenset({"string_prices"})),
        coordinator=InMemoryCoordinator(holder="schema-test"),
        strategy=Strategy.AUTO_BACKFILL,
        conformance=ConformancePipeline(partial_ok=True, schema_stage=stage),
        metrics=SeamlessMetrics(CollectorRegistry()),
        cache_ttl_s=0.0,
    )


@pytest.mark.parametrize("mode", ["canary", "strict"])
async def test_fetch_with_a_retyped_column(
    mode: str, registry: RemoteSchemaRegistry, store: QuestDBBarStore
) -> None:
    """`close` arrives as text. Canary: served, counted. Strict: the fetch fails naming
    the field, and nothing is stored."""
    subject = _subject()
    registry.register(subject, BARS)
    metrics = SeamlessMetrics(CollectorRegistry())
    stage = SchemaStage(registry, subject=subject, mode=mode, metrics=metrics)  # type: ignore[arg-type]
    provider = _provider(store, stage)
    labels = {"subject": subject, "mode": mode}
    if mode == "canary":
        result = await provider.fetch(0, IV * 29, node_id="schema", interval=IV)
        assert result.frame.height == 30
        assert metrics.value(FAILURES, labels) >= 1
        assert (await store.read("schema", IV, 0, IV * 29)).height == 30
    else:
        with pytest.raises(SchemaValidationError, match="field 'close': expected number"):
            await provider.fetch(0, IV * 29, node_id="schema", interval=IV)
        assert metrics.value(FAILURES, labels) >= 1
        assert (await store.read("schema", IV, 0, IV * 29)).height == 0
    await provider.aclose()
