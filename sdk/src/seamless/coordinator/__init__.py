"""The seamless-coordinator service: Redis-backed backfill leases with fencing tokens, over
HTTP, wire-compatible with QMTL's DistributedBackfillCoordinator client."""

from seamless.coordinator.app import create_app
from seamless.coordinator.settings import CoordinatorSettings, load_settings

__all__ = ["CoordinatorSettings", "create_app", "load_settings"]
