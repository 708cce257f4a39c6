"""The bundle's services as plain data, knowing nothing of Docker or Kubernetes.

One module per service (`gateway`, `dagmanager`, ..., `minio`) carries its image default,
ports, probes and the routes they hit, its grants on the shared dependencies and the
credentials it reads; `registry` lists them and builds a stack's `Catalog`. The platforms
(`infra/platforms/`) render that catalog.
"""

from infra.catalog.model import (
    BuildContext,
    Catalog,
    CatalogError,
    ConfigFile,
    Endpoints,
    Entry,
    Grants,
    JobSpec,
    Port,
    Probe,
    Resources,
    SecretItem,
    ServiceSpec,
    Volume,
)
from infra.catalog.registry import (
    ALL_SERVICES,
    DEFAULT_IMAGES,
    ENTRIES,
    KAFKA_USERS,
    OBJECT_STORE_GRANTS,
    QMTL_SERVICES,
    REAL_HTTP_ROUTES,
    REDIS_GRANTS,
    SDK_CREDENTIALS,
    build_catalog,
    qmtl_config_document,
)

__all__ = [
    "ALL_SERVICES",
    "DEFAULT_IMAGES",
    "ENTRIES",
    "KAFKA_USERS",
    "OBJECT_STORE_GRANTS",
    "QMTL_SERVICES",
    "REAL_HTTP_ROUTES",
    "REDIS_GRANTS",
    "SDK_CREDENTIALS",
    "BuildContext",
    "Catalog",
    "CatalogError",
    "ConfigFile",
    "Endpoints",
    "Entry",
    "Grants",
    "JobSpec",
    "Port",
    "Probe",
    "Resources",
    "SecretItem",
    "ServiceSpec",
    "Volume",
    "build_catalog",
    "qmtl_config_document",
]
