"""`create_provider`: one call from a `seamless` config to a ready provider; prod refuses
what it lacks, naming the key; presets are applied by name."""

from __future__ import annotations

import pytest
from seamless.config.loading import load_section
from seamless.config.model import SeamlessConfig
from seamless.coordination.memory import InMemoryCoordinator
from seamless.data.provider import Strategy
from seamless.data.sla import OnViolation
from seamless.data.storage import MemoryBarStore, QuestDBBarStore
from seamless.errors import ConfigError, PresetError
from seamless.factory import ProviderSettings, bar_store, create_provider
from seamless.testing import SyntheticFetcher, synthetic_bars

pytestmark = pytest.mark.unit


async def test_dev_config_gives_a_working_provider_with_presets_by_name() -> None:
    config = load_section(
        {
            "profile": "dev",
            "sla_preset": "tolerant-partial",
            "conformance_preset": "permissive-dev",
        },
        env={},
    )
    provider = await create_provider(
        config,
        fetcher=SyntheticFetcher(seed=3),
        settings=ProviderSettings(strategy=Strategy.AUTO_BACKFILL, cache_ttl_s=0),
    )
    assert isinstance(provider.coordinator, InMemoryCoordinator)
    assert isinstance(provider.store, MemoryBarStore)
    assert provider.sla.on_violation is OnViolation.PARTIAL_FILL
    assert provider.sla.total_deadline_ms == 90_000
    assert provider.conformance.partial_ok and provider.publisher is None
    result = await provider.fetch(0, 60 * 99, node_id="n", interval=60)
    assert result.frame.equals(synthetic_bars(0, 60 * 99, node_id="n", interval=60, seed=3))
    assert result.metadata.sources == ["backfill"]


async def test_prod_without_questdb_names_the_key() -> None:
    config = load_section(
        {"profile": "prod", "coordinator_url": "http://127.0.0.1:9"}, env={}, source="qmtl.yml"
    )
    with pytest.raises(ConfigError) as err:
        await create_provider(config)
    assert err.value.key == "seamless.questdb_dsn"
    assert "QMTL_SEAMLESS_QUESTDB_DSN" in str(err.value)


async def test_env_overrides_reach_the_provider_and_bad_presets_fail_first() -> None:
    config = load_section({"profile": "dev"}, env={"QMTL_SEAMLESS_SLA_PRESET": "tolerant-partial"})
    assert (await create_provider(config)).sla.total_deadline_ms == 90_000
    with pytest.raises(PresetError):
        await create_provider(SeamlessConfig(profile="dev", sla_preset="enterprise"))


async def test_artifacts_enabled_without_a_bucket_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        await create_provider(SeamlessConfig(profile="dev", artifacts_enabled=True))
    assert err.value.key == "seamless.artifact_bucket"


def test_the_questdb_store_comes_from_the_dsn() -> None:
    cfg = SeamlessConfig(questdb_dsn="postgresql://admin:quest@qdb.internal:8812/qdb")
    store = bar_store(cfg, ProviderSettings(), source="config")
    assert isinstance(store, QuestDBBarStore)
    assert store.http_url == "http://qdb.internal:9000"
    assert store.ilp_conf == "http::addr=qdb.internal:9000;"
    custom = bar_store(
        cfg,
        ProviderSettings(questdb_http_url="http://127.0.0.1:41000", columnar_reads=False),
        source="config",
    )
    assert isinstance(custom, QuestDBBarStore)
    assert custom.http_url is None and custom.ilp_conf == "http::addr=127.0.0.1:41000;"
