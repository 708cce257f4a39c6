"""Schema registry governance: registry clients, schemas and their compatibility, the
conformance pipeline's schema stage, and the promotion audit log."""

from seamless.data.schema_registry.client import (
    InMemorySchemaRegistry,
    RegisteredSchema,
    RemoteSchemaRegistry,
    SchemaRegistry,
    registry_from_url,
)
from seamless.data.schema_registry.schema import (
    BarSchema,
    Compatibility,
    FieldSpec,
    check_subject,
    compatibility,
)
from seamless.data.schema_registry.stage import (
    DEFAULT_SUBJECT,
    VALIDATION_MODES,
    SchemaDiagnostics,
    SchemaStage,
    ValidationMode,
    default_subject,
)

__all__ = [
    "DEFAULT_SUBJECT",
    "VALIDATION_MODES",
    "BarSchema",
    "Compatibility",
    "FieldSpec",
    "InMemorySchemaRegistry",
    "RegisteredSchema",
    "RemoteSchemaRegistry",
    "SchemaDiagnostics",
    "SchemaRegistry",
    "SchemaStage",
    "ValidationMode",
    "check_subject",
    "compatibility",
    "default_subject",
    "registry_from_url",
]
