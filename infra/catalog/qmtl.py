"""What QMTL's own services (gateway, dagmanager, worldservice) share: the `config.yml` each
reads (via QMTL_CONFIG), every DSN filled, delivered as a secret file.

In dev (`in_memory`) they use their in-memory backends and only Redis and the ControlBus;
prod wires Postgres and Neo4j too. Each service module renders its own section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from infra.catalog import controlbus, redis
from infra.catalog.model import (
    BuildContext,
    Credentials,
    QmtlSection,
    SecretItem,
    resources,
)

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

CONFIG_PATH = "/etc/qmtl/config.yml"
ENV = {"QMTL_CONFIG": CONFIG_PATH}
RESOURCES = resources("250m", "1", 256, 1024)


def edges(config: StackConfig) -> tuple[str, ...]:
    """The Redis and the ControlBus every QMTL service dials (none when they are managed)."""
    return (*redis.edges(config), *controlbus.edges(config))


def document(
    ctx: BuildContext, service: str, section: QmtlSection, creds: Credentials
) -> dict[str, object]:
    """The whole `config.yml` of `service`: the shared parts around its own section."""
    config = ctx.config
    brokers = list(ctx.endpoints.kafka_brokers)
    doc: dict[str, object] = {
        "profile": config.profile,
        "seamless": {k: v for k, v in config.seamless.items() if k != "profile"},
        "telemetry": {"otel_exporter_endpoint": None},
        service: section.render(creds, brokers),
    }
    doc["controlbus"] = {
        "brokers": brokers,
        "topic_prefix": config.topic_prefix,
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": service,
        "sasl_password": creds[f"controlbus.{service}"],
    }
    return doc


def config_item(ctx: BuildContext, service: str, section: QmtlSection) -> SecretItem:
    def render(c: Credentials) -> str:
        return yaml.safe_dump(document(ctx, service, section, c), sort_keys=False)

    needs = (f"redis.{service}", *section.needs, f"controlbus.{service}")
    return SecretItem(key="config.yml", render=render, needs=needs, file=CONFIG_PATH)
