"""Preview-time checks (infra/profile.py): the rendered QMTL service configs are checked
with `seamless config validate --target <service> --offline`'s own rules."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from infra.catalog import Catalog, build_catalog
from infra.profile import ProfileError, check_service_configs
from infra.stack_config import StackConfigError, parse_stack_config
from tests.infra.harness import run_program, stack_file_config

pytestmark = pytest.mark.infra


def _config(stack: str, **controlbus: Any) -> dict[str, Any]:
    config = stack_file_config(stack)
    if controlbus:
        config["controlbus"] = {**config["controlbus"], **controlbus}
    return config


def _catalog(stack: str, config: dict[str, Any]) -> Catalog:
    # Generated credentials play no part in these checks.
    return build_catalog(parse_stack_config({**config, "credentialSource": "random"}, stack=stack))


@pytest.mark.parametrize("stack", ["dev", "prod", "partial"])
def test_the_shipped_stacks_render_valid_service_configs(stack: str) -> None:
    check_service_configs(_catalog(stack, _config(stack)))  # raises on the first invalid key


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_topic_prefix_kafka_cannot_name_is_refused_naming_the_key(stack: str) -> None:
    catalog = _catalog(stack, _config(stack, topicPrefix="qmtl bus."))
    with pytest.raises(ProfileError) as info:
        check_service_configs(catalog)
    message = str(info.value)
    assert message.startswith("controlbus.topic_prefix = 'qmtl bus.'")
    assert "not a topic prefix" in message and "gateway config.yml this stack renders" in message


@pytest.mark.parametrize("broker", ["kafka.example.com", "kafka.example.com:9092 ", 9092, "a b:1"])
def test_a_managed_broker_not_host_port_is_refused_at_the_edge(broker: Any) -> None:
    config = _config("prod", external=True, brokers=["ok.example.com:9092", broker])
    if broker == "kafka.example.com:9092 ":
        _catalog("prod", config)  # surrounding blanks are trimmed, not refused
        return
    with pytest.raises(StackConfigError, match=r"controlbus\.brokers has .*expected a list of"):
        _catalog("prod", config)


@pulumi.runtime.test
def test_the_preview_fails_on_an_invalid_service_config() -> pulumi.Output[str]:
    with pytest.raises(pulumi.RunError) as info:
        run_program("prod", _config("prod", topicPrefix="qmtl bus."))
    message = str(info.value)
    assert "controlbus.topic_prefix" in message and "not a topic prefix" in message
    assert "Traceback" not in message
    return pulumi.Output.from_input(message)
