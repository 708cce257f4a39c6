"""infra/credentials.py: which credentials a stack needs, and that generating them keeps
what is stored. (The command itself runs against the real CLI in tests/engine.)"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra import catalog
from infra.credentials import fill, needed_keys
from tests.infra.harness import run_program, stack_file_config

pytestmark = pytest.mark.infra


def _config_json(stack: str) -> dict[str, Any]:
    """`pulumi config --json` for a stack file: objects carry objectValue, secrets a mask."""
    out: dict[str, Any] = {}
    for key, value in stack_file_config(stack).items():
        entry: dict[str, Any] = {"secret": False}
        if isinstance(value, dict):
            entry.update(value=json.dumps(value), objectValue=value)
        else:
            entry["value"] = value
        out[f"seamless-stack:{key}"] = entry
    out["seamless-stack:credentials"] = {"value": "[secret]", "secret": True}
    return out


def test_prod_needs_every_service_password_and_no_identity_name() -> None:
    keys = needed_keys(_config_json("prod"), "prod")
    assert {f"redis.{g.user}" for g in catalog.REDIS_GRANTS} <= set(keys)
    assert {f"objectstore.{g.identity}.secret_key" for g in catalog.OBJECT_STORE_GRANTS} <= set(
        keys
    )
    assert {"coordinator.token", "minio.root_password", "questdb", "neo4j"} <= set(keys)
    assert "coordinator.operator_token" in keys  # the coordinator's `ops` client
    assert not [k for k in keys if k.endswith(".access_key")]
    assert "minio.root_user" not in keys


def test_fill_keeps_stored_values_and_adds_only_missing_ones() -> None:
    stored = {"redis.gateway": "kept-value"}
    values = fill(stored, ["redis.gateway", "neo4j"])
    assert values["redis.gateway"] == "kept-value"
    assert len(values["neo4j"]) == 32 and values["neo4j"].isalnum()
    assert fill(values, ["redis.gateway", "neo4j"]) == values
    rotated = fill(values, ["redis.gateway", "neo4j"], rotate=["neo4j"])
    assert rotated["neo4j"] != values["neo4j"] and rotated["redis.gateway"] == "kept-value"


def test_a_missing_stack_credential_is_named() -> None:
    with pytest.raises(pulumi.RunError, match=r"credentials lacks .*neo4j"):
        run_program("prod", stack_file_config("prod"), {"credentials": '{"redis.gateway": "x"}'})
