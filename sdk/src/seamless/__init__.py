"""seamless: the runtime of the Seamless full-stack bundle.

The names below are the package's public API: `from seamless import create_provider,
load_config, hold_lease, SeamlessError, ...`. They are resolved on first use, so
`import seamless` stays cheap (the coordinator service and the CLI import only what they
use: no polars, psycopg or boto3 until a name needs them). `_EXPORTS` maps each name to the
module that defines it; the `TYPE_CHECKING` re-exports give type checkers the same names,
and a test keeps the two in step.

The package's layout is its architecture:

- `seamless.data`: the data path — the provider (cache → storage → backfill → live), bars,
  coverage, fetchers, live feeds, conformance and schema governance, SLA, backfill, stores,
  artifacts;
- `seamless.coordination`: the client side of backfill coordination — the `Coordinator`
  interface, the wire protocol, the HTTP client, the in-process dev coordinator, leases;
- `seamless.coordinator`: the coordinator service (FastAPI app, Lua lease scripts on Redis);
- `seamless.config`: the `seamless` config section, presets, validation;
- `seamless.cli`: the `seamless` command; `seamless.factory`: config → ready objects;
- `seamless.errors`: every exception; `seamless.testing`: synthetic fetchers and feeds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from seamless.config.loading import LoadedConfig as LoadedConfig
    from seamless.config.loading import load_config as load_config
    from seamless.config.model import SeamlessConfig as SeamlessConfig
    from seamless.config.presets import load_presets as load_presets
    from seamless.coordination.client import CoordinatorClient as CoordinatorClient
    from seamless.coordination.interface import Coordinator as Coordinator
    from seamless.coordination.interface import Granted as Granted
    from seamless.coordination.interface import NotGranted as NotGranted
    from seamless.coordination.leases import HeldLease as HeldLease
    from seamless.coordination.leases import hold_lease as hold_lease
    from seamless.data.artifacts import ArtifactPublisher as ArtifactPublisher
    from seamless.data.backfill import BackfillConfig as BackfillConfig
    from seamless.data.backfill import Backfiller as Backfiller
    from seamless.data.backfill import BackfillReport as BackfillReport
    from seamless.data.conformance import ConformancePipeline as ConformancePipeline
    from seamless.data.conformance import ConformanceReport as ConformanceReport
    from seamless.data.coverage import Range as Range
    from seamless.data.fetcher import DataFetcher as DataFetcher
    from seamless.data.live import Bar as Bar
    from seamless.data.live import LiveFeed as LiveFeed
    from seamless.data.provider import FetchMetadata as FetchMetadata
    from seamless.data.provider import FetchResult as FetchResult
    from seamless.data.provider import SeamlessDataProvider as SeamlessDataProvider
    from seamless.data.provider import Strategy as Strategy
    from seamless.data.schema_registry import InMemorySchemaRegistry as InMemorySchemaRegistry
    from seamless.data.schema_registry import RemoteSchemaRegistry as RemoteSchemaRegistry
    from seamless.data.schema_registry import SchemaRegistry as SchemaRegistry
    from seamless.data.schema_registry import SchemaStage as SchemaStage
    from seamless.data.sla import OnViolation as OnViolation
    from seamless.data.sla import Phase as Phase
    from seamless.data.sla import SLAPolicy as SLAPolicy
    from seamless.data.storage.base import BarStore as BarStore
    from seamless.data.storage.memory import MemoryBarStore as MemoryBarStore
    from seamless.data.storage.questdb import QuestDBBarStore as QuestDBBarStore
    from seamless.errors import ArtifactPublishError as ArtifactPublishError
    from seamless.errors import BackfillError as BackfillError
    from seamless.errors import ConfigError as ConfigError
    from seamless.errors import ConfigSectionMissing as ConfigSectionMissing
    from seamless.errors import ConformancePipelineError as ConformancePipelineError
    from seamless.errors import CoordinatorAuthError as CoordinatorAuthError
    from seamless.errors import CoordinatorError as CoordinatorError
    from seamless.errors import CoordinatorRequestRejected as CoordinatorRequestRejected
    from seamless.errors import CoordinatorStartupError as CoordinatorStartupError
    from seamless.errors import CoordinatorUnavailable as CoordinatorUnavailable
    from seamless.errors import CoverageUnavailable as CoverageUnavailable
    from seamless.errors import FetchFailed as FetchFailed
    from seamless.errors import InvalidRequestError as InvalidRequestError
    from seamless.errors import LeaseLost as LeaseLost
    from seamless.errors import LeaseNotGranted as LeaseNotGranted
    from seamless.errors import PresetError as PresetError
    from seamless.errors import RedisDsnError as RedisDsnError
    from seamless.errors import SchemaRegistryError as SchemaRegistryError
    from seamless.errors import SchemaRegistryUnavailable as SchemaRegistryUnavailable
    from seamless.errors import SchemaValidationError as SchemaValidationError
    from seamless.errors import SeamlessError as SeamlessError
    from seamless.errors import SeamlessSLAExceeded as SeamlessSLAExceeded
    from seamless.errors import StorageError as StorageError
    from seamless.errors import WriteFenced as WriteFenced
    from seamless.errors import YamlLimitError as YamlLimitError
    from seamless.factory import ProviderSettings as ProviderSettings
    from seamless.factory import create_coordinator as create_coordinator
    from seamless.factory import create_provider as create_provider
    from seamless.metrics import SeamlessMetrics as SeamlessMetrics

_EXPORTS: dict[str, str] = {
    "LoadedConfig": "seamless.config.loading",
    "SeamlessConfig": "seamless.config.model",
    "load_config": "seamless.config.loading",
    "ProviderSettings": "seamless.factory",
    "create_coordinator": "seamless.factory",
    "create_provider": "seamless.factory",
    "FetchMetadata": "seamless.data.provider",
    "FetchResult": "seamless.data.provider",
    "SeamlessDataProvider": "seamless.data.provider",
    "Strategy": "seamless.data.provider",
    "Coordinator": "seamless.coordination.interface",
    "Granted": "seamless.coordination.interface",
    "NotGranted": "seamless.coordination.interface",
    "CoordinatorClient": "seamless.coordination.client",
    "HeldLease": "seamless.coordination.leases",
    "hold_lease": "seamless.coordination.leases",
    "BackfillConfig": "seamless.data.backfill",
    "BackfillReport": "seamless.data.backfill",
    "Backfiller": "seamless.data.backfill",
    "OnViolation": "seamless.data.sla",
    "Phase": "seamless.data.sla",
    "SLAPolicy": "seamless.data.sla",
    "ConformancePipeline": "seamless.data.conformance",
    "ConformanceReport": "seamless.data.conformance",
    "Range": "seamless.data.coverage",
    "DataFetcher": "seamless.data.fetcher",
    "FetchFailed": "seamless.errors",
    "Bar": "seamless.data.live",
    "LiveFeed": "seamless.data.live",
    "BarStore": "seamless.data.storage.base",
    "MemoryBarStore": "seamless.data.storage.memory",
    "QuestDBBarStore": "seamless.data.storage.questdb",
    "ArtifactPublisher": "seamless.data.artifacts",
    "SeamlessMetrics": "seamless.metrics",
    "load_presets": "seamless.config.presets",
    "InMemorySchemaRegistry": "seamless.data.schema_registry",
    "RemoteSchemaRegistry": "seamless.data.schema_registry",
    "SchemaRegistry": "seamless.data.schema_registry",
    "SchemaStage": "seamless.data.schema_registry",
    "ArtifactPublishError": "seamless.errors",
    "BackfillError": "seamless.errors",
    "ConfigError": "seamless.errors",
    "ConfigSectionMissing": "seamless.errors",
    "ConformancePipelineError": "seamless.errors",
    "CoordinatorAuthError": "seamless.errors",
    "CoordinatorError": "seamless.errors",
    "CoordinatorRequestRejected": "seamless.errors",
    "CoordinatorStartupError": "seamless.errors",
    "CoordinatorUnavailable": "seamless.errors",
    "CoverageUnavailable": "seamless.errors",
    "InvalidRequestError": "seamless.errors",
    "LeaseLost": "seamless.errors",
    "LeaseNotGranted": "seamless.errors",
    "PresetError": "seamless.errors",
    "RedisDsnError": "seamless.errors",
    "SchemaRegistryError": "seamless.errors",
    "SchemaRegistryUnavailable": "seamless.errors",
    "SchemaValidationError": "seamless.errors",
    "SeamlessError": "seamless.errors",
    "SeamlessSLAExceeded": "seamless.errors",
    "StorageError": "seamless.errors",
    "WriteFenced": "seamless.errors",
    "YamlLimitError": "seamless.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seamless' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
