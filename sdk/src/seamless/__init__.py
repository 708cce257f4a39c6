"""seamless: the runtime of the Seamless full-stack bundle.

The names below are the package's public API: `from seamless import create_provider,
load_config, hold_lease, SeamlessError, ...`. They are resolved on first use, so
`import seamless` stays cheap (the coordinator service and the CLI import only what they
use: no polars, psycopg or boto3 until a name needs them). `_EXPORTS` maps each name to the
module that defines it; the `TYPE_CHECKING` re-exports give type checkers the same names,
and a test keeps the two in step.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from seamless.artifacts import ArtifactPublisher as ArtifactPublisher
    from seamless.backfill import BackfillConfig as BackfillConfig
    from seamless.backfill import Backfiller as Backfiller
    from seamless.backfill import BackfillReport as BackfillReport
    from seamless.config import LoadedConfig as LoadedConfig
    from seamless.config import SeamlessConfig as SeamlessConfig
    from seamless.config import load_config as load_config
    from seamless.conformance import ConformancePipeline as ConformancePipeline
    from seamless.conformance import ConformanceReport as ConformanceReport
    from seamless.coordination import Coordinator as Coordinator
    from seamless.coordination import Granted as Granted
    from seamless.coordination import NotGranted as NotGranted
    from seamless.coordinator_client import CoordinatorClient as CoordinatorClient
    from seamless.coverage import Range as Range
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
    from seamless.errors import InvalidRequestError as InvalidRequestError
    from seamless.errors import LeaseLost as LeaseLost
    from seamless.errors import LeaseNotGranted as LeaseNotGranted
    from seamless.errors import PresetError as PresetError
    from seamless.errors import SchemaRegistryError as SchemaRegistryError
    from seamless.errors import SchemaRegistryUnavailable as SchemaRegistryUnavailable
    from seamless.errors import SchemaValidationError as SchemaValidationError
    from seamless.errors import SeamlessError as SeamlessError
    from seamless.errors import SeamlessSLAExceeded as SeamlessSLAExceeded
    from seamless.errors import StorageError as StorageError
    from seamless.errors import WriteFenced as WriteFenced
    from seamless.factory import ProviderSettings as ProviderSettings
    from seamless.factory import create_coordinator as create_coordinator
    from seamless.factory import create_provider as create_provider
    from seamless.fetcher import DataFetcher as DataFetcher
    from seamless.fetcher import FetchFailed as FetchFailed
    from seamless.leases import HeldLease as HeldLease
    from seamless.leases import hold_lease as hold_lease
    from seamless.live import Bar as Bar
    from seamless.live import LiveFeed as LiveFeed
    from seamless.metrics import SeamlessMetrics as SeamlessMetrics
    from seamless.presets import load_presets as load_presets
    from seamless.provider import FetchMetadata as FetchMetadata
    from seamless.provider import FetchResult as FetchResult
    from seamless.provider import SeamlessDataProvider as SeamlessDataProvider
    from seamless.provider import Strategy as Strategy
    from seamless.schema_registry import InMemorySchemaRegistry as InMemorySchemaRegistry
    from seamless.schema_registry import RemoteSchemaRegistry as RemoteSchemaRegistry
    from seamless.schema_registry import SchemaRegistry as SchemaRegistry
    from seamless.schema_registry import SchemaStage as SchemaStage
    from seamless.sla import OnViolation as OnViolation
    from seamless.sla import Phase as Phase
    from seamless.sla import SLAPolicy as SLAPolicy
    from seamless.storage.base import BarStore as BarStore
    from seamless.storage.memory import MemoryBarStore as MemoryBarStore
    from seamless.storage.questdb import QuestDBBarStore as QuestDBBarStore

_EXPORTS: dict[str, str] = {
    "LoadedConfig": "seamless.config",
    "SeamlessConfig": "seamless.config",
    "load_config": "seamless.config",
    "ProviderSettings": "seamless.factory",
    "create_coordinator": "seamless.factory",
    "create_provider": "seamless.factory",
    "FetchMetadata": "seamless.provider",
    "FetchResult": "seamless.provider",
    "SeamlessDataProvider": "seamless.provider",
    "Strategy": "seamless.provider",
    "Coordinator": "seamless.coordination",
    "Granted": "seamless.coordination",
    "NotGranted": "seamless.coordination",
    "CoordinatorClient": "seamless.coordinator_client",
    "HeldLease": "seamless.leases",
    "hold_lease": "seamless.leases",
    "BackfillConfig": "seamless.backfill",
    "BackfillReport": "seamless.backfill",
    "Backfiller": "seamless.backfill",
    "OnViolation": "seamless.sla",
    "Phase": "seamless.sla",
    "SLAPolicy": "seamless.sla",
    "ConformancePipeline": "seamless.conformance",
    "ConformanceReport": "seamless.conformance",
    "Range": "seamless.coverage",
    "DataFetcher": "seamless.fetcher",
    "FetchFailed": "seamless.fetcher",
    "Bar": "seamless.live",
    "LiveFeed": "seamless.live",
    "BarStore": "seamless.storage.base",
    "MemoryBarStore": "seamless.storage.memory",
    "QuestDBBarStore": "seamless.storage.questdb",
    "ArtifactPublisher": "seamless.artifacts",
    "SeamlessMetrics": "seamless.metrics",
    "load_presets": "seamless.presets",
    "InMemorySchemaRegistry": "seamless.schema_registry",
    "RemoteSchemaRegistry": "seamless.schema_registry",
    "SchemaRegistry": "seamless.schema_registry",
    "SchemaStage": "seamless.schema_registry",
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
    "SchemaRegistryError": "seamless.errors",
    "SchemaRegistryUnavailable": "seamless.errors",
    "SchemaValidationError": "seamless.errors",
    "SeamlessError": "seamless.errors",
    "SeamlessSLAExceeded": "seamless.errors",
    "StorageError": "seamless.errors",
    "WriteFenced": "seamless.errors",
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
    return sorted({*globals(), *_EXPORTS})
