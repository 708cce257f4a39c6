"""Coordinator settings: QMTL's env names, file + env override, and start-up errors that
name the bad key without ever echoing a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from seamless.coordinator.settings import load_settings
from seamless.errors import ConfigError

pytestmark = pytest.mark.unit

TOKEN = "s3cret-token-value-0123456789"
BASE = {"REDIS_DSN": "redis://redis:6379/0", "COORDINATOR_TOKENS": f"sdk={TOKEN}"}


def test_qmtl_names_and_defaults() -> None:
    settings = load_settings(
        {
            **BASE,
            "COORDINATOR_ID": "coord-1",
            "BIND_ADDR": "0.0.0.0:8080",
            "PROMETHEUS_PORT": "9102",
            "QUESTDB_DSN": "postgresql://admin:quest@questdb:8812/qdb",
            "ARTIFACT_ENDPOINT": "http://minio:9000",
            "ARTIFACT_BUCKET": "seamless-artifacts",
            "ARTIFACT_SECRET_KEY": "minio-secret",
        }
    )
    assert (settings.coordinator_id, settings.host, settings.port) == ("coord-1", "0.0.0.0", 8080)
    assert settings.prometheus_port == 9102
    assert settings.key_prefix == "seamless:" and settings.max_attempts == 6
    assert settings.ledger_table == "seamless_backfill_ledger"
    assert settings.tokens["sdk"].get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and "minio-secret" not in repr(settings)


def test_env_overrides_the_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"sdk-a: {TOKEN}\nsdk-b: {TOKEN}-b\n")
    config = tmp_path / "coordinator.yaml"
    config.write_text(
        "redis_dsn: redis://file:6379/0\n"
        "COORDINATOR_MAX_ATTEMPTS: 4\n"
        "coordinator_key_prefix: 'qmtl:'\n"
        f"coordinator_tokens_file: {tokens}\n"
    )
    settings = load_settings({"COORDINATOR_MAX_ATTEMPTS": "9"}, config_file=config)
    assert settings.redis_dsn == "redis://file:6379/0"
    assert settings.max_attempts == 9 and settings.key_prefix == "qmtl:"
    assert sorted(settings.tokens) == ["sdk-a", "sdk-b"]


def test_tokens_as_json_object() -> None:
    settings = load_settings({**BASE, "COORDINATOR_TOKENS": f'{{"a": "{TOKEN}"}}'})
    assert list(settings.tokens) == ["a"]


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"COORDINATOR_TOKENS": f"sdk={TOKEN}"}, "REDIS_DSN"),
        ({**BASE, "REDIS_DSN": "http://redis:6379"}, "REDIS_DSN"),
        ({**BASE, "BIND_ADDR": "8080"}, "BIND_ADDR"),
        ({**BASE, "BIND_ADDR": "0.0.0.0:http"}, "BIND_ADDR"),
        ({**BASE, "PROMETHEUS_PORT": "70000"}, "PROMETHEUS_PORT"),
        ({**BASE, "QUESTDB_DSN": "questdb:8812"}, "QUESTDB_DSN"),
        ({**BASE, "ARTIFACT_ENDPOINT": "minio:9000"}, "ARTIFACT_ENDPOINT"),
        ({**BASE, "ARTIFACT_BUCKET": "Bad_Bucket"}, "ARTIFACT_BUCKET"),
        ({**BASE, "COORDINATOR_MAX_ATTEMPTS": "0"}, "COORDINATOR_MAX_ATTEMPTS"),
        ({**BASE, "COORDINATOR_RATE_LIMIT": "fast"}, "COORDINATOR_RATE_LIMIT"),
        ({**BASE, "COORDINATOR_KEY_PREFIX": "bad prefix"}, "COORDINATOR_KEY_PREFIX"),
        ({**BASE, "COORDINATOR_LEDGER_PREFIX": "1; DROP"}, "COORDINATOR_LEDGER_PREFIX"),
        ({**BASE, "LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"REDIS_DSN": "redis://r:1/0"}, "COORDINATOR_TOKENS"),
        ({"REDIS_DSN": "redis://r:1/0", "COORDINATOR_TOKENS": "sdk"}, "COORDINATOR_TOKENS"),
        ({"REDIS_DSN": "redis://r:1/0", "COORDINATOR_TOKENS": "sdk=short"}, "COORDINATOR_TOKENS"),
        (
            {"REDIS_DSN": "redis://r:1/0", "COORDINATOR_TOKENS": f"a={TOKEN},b={TOKEN}"},
            "COORDINATOR_TOKENS",
        ),
        (
            {**BASE, "COORDINATOR_TOKENS_FILE": "/nonexistent/tokens.yaml"},
            "COORDINATOR_TOKENS_FILE",
        ),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert raised.value.key == key
    assert str(raised.value).startswith(key)
    assert raised.value.expected  # the valid form is given
    assert TOKEN not in str(raised.value) and "short" not in str(raised.value)


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("redis_dns: redis://typo:6379/0\n")
    with pytest.raises(ConfigError) as raised:
        load_settings({}, config_file=config)
    assert raised.value.key == "redis_dns" and "unknown setting" in str(raised.value)


# --- client tokens with roles (issue 17, item 3) -------------------------------------------

OPS_TOKEN = "operator-token-value-9876543210"


def test_a_token_string_is_a_worker_and_the_object_form_names_roles(tmp_path: Path) -> None:
    inline = (
        f'{{"sdk": "{TOKEN}", "ops": {{"token": "{OPS_TOKEN}", "roles": ["operator"]}}, '
        f'"both": {{"token": "{TOKEN}-both", "roles": ["worker", "operator"]}}}}'
    )
    settings = load_settings({**BASE, "COORDINATOR_TOKENS": inline})
    assert settings.tokens["ops"].get_secret_value() == OPS_TOKEN
    assert settings.roles_of("sdk") == {"worker"}
    assert settings.roles_of("ops") == {"operator"}
    assert settings.roles_of("both") == {"worker", "operator"}
    assert OPS_TOKEN not in repr(settings)

    tokens = tmp_path / "tokens.yml"
    tokens.write_text(f"sdk: {TOKEN}\nops:\n  token: {OPS_TOKEN}\n  roles: [operator]\n")
    from_file = load_settings({"REDIS_DSN": "redis://r:1", "COORDINATOR_TOKENS_FILE": str(tokens)})
    assert from_file.roles_of("sdk") == {"worker"} and from_file.roles_of("ops") == {"operator"}

    # The inline 'id=token' form names workers only.
    plain = load_settings({**BASE, "COORDINATOR_TOKENS": f"a={TOKEN},b={OPS_TOKEN}"})
    assert plain.roles_of("a") == plain.roles_of("b") == {"worker"}


def test_an_inline_entry_replaces_the_files_entry_roles_included(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yml"
    tokens.write_text(f"ops:\n  token: {OPS_TOKEN}\n  roles: [operator]\n")
    settings = load_settings(
        {**BASE, "COORDINATOR_TOKENS_FILE": str(tokens), "COORDINATOR_TOKENS": f"ops={TOKEN}"}
    )
    assert settings.tokens["ops"].get_secret_value() == TOKEN
    assert settings.roles_of("ops") == {"worker"}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"token": OPS_TOKEN, "roles": ["admin"]}, "unknown role(s) 'admin'"),
        ({"token": OPS_TOKEN, "roles": ["operator", "root"]}, "unknown role(s) 'root'"),
        ({"token": OPS_TOKEN, "roles": []}, "non-empty list of roles"),
        ({"token": OPS_TOKEN, "roles": "operator"}, "non-empty list of roles"),
        ({"token": OPS_TOKEN}, "non-empty list of roles"),
        ({"roles": ["operator"]}, "has no token"),
        ({"token": OPS_TOKEN, "roles": ["operator"], "role": "x"}, "unknown field(s) role"),
        ({"token": "short", "roles": ["operator"]}, "at least 16 characters"),
        ({"token": 12345678901234567890, "roles": ["worker"]}, "must be a string"),
        ({"token": OPS_TOKEN + " x", "roles": ["worker"]}, "contains whitespace"),
    ],
)
@pytest.mark.parametrize("where", ["env", "file"])
def test_a_bad_role_entry_names_the_key_the_client_and_the_form(
    tmp_path: Path, entry: dict, problem: str, where: str
) -> None:
    env = {"REDIS_DSN": "redis://r:1/0"}
    if where == "env":
        key = "COORDINATOR_TOKENS"
        env[key] = json.dumps({"ops": entry})
    else:
        key = "COORDINATOR_TOKENS_FILE"
        path = tmp_path / "tokens.yml"
        path.write_text(yaml.safe_dump({"ops": entry}))
        env[key] = str(path)
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert raised.value.key == key and message.startswith(key)
    assert "'ops'" in message and problem in message
    assert '{"token": "<token>", "roles": [<one or more of worker, operator>]}' in message
    assert OPS_TOKEN not in message and "short" not in message


def test_clients_of_the_file_and_the_env_may_not_share_a_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yml"
    tokens.write_text(f"ops:\n  token: {TOKEN}\n  roles: [operator]\n")
    with pytest.raises(ConfigError) as raised:
        load_settings({**BASE, "COORDINATOR_TOKENS_FILE": str(tokens)})  # BASE: sdk=TOKEN
    assert raised.value.key == "COORDINATOR_TOKENS" and "share one token" in str(raised.value)
    assert TOKEN not in str(raised.value)


# --- bounded metric series (issue 17, item 4) ----------------------------------------------


def test_max_metric_series_defaults_and_reaches_the_app() -> None:
    from seamless.coordinator import create_app
    from seamless.coordinator.metrics import DEFAULT_MAX_SERIES

    assert load_settings(BASE).max_metric_series == DEFAULT_MAX_SERIES == 50
    settings = load_settings({**BASE, "COORDINATOR_MAX_METRIC_SERIES": "7"})
    assert settings.max_metric_series == 7
    metrics = create_app(settings).state.service.metrics
    assert metrics.completed.max_series == metrics.completion_ratio.max_series == 7


@pytest.mark.parametrize("value", ["0", "100001", "many"])
def test_max_metric_series_out_of_range_names_the_key_and_range(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**BASE, "COORDINATOR_MAX_METRIC_SERIES": value})
    assert raised.value.key == "COORDINATOR_MAX_METRIC_SERIES"
    assert "1-100000" in str(raised.value)
