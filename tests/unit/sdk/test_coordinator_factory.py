"""The profile-aware factory: prod never downgrades; dev warns and uses memory."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from seamless.config.loading import load_section
from seamless.config.model import SeamlessConfig
from seamless.coordination.memory import InMemoryCoordinator
from seamless.errors import ConfigError, CoordinatorStartupError
from seamless.factory import create_coordinator
from structlog.testing import capture_logs

pytestmark = pytest.mark.unit


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_prod_without_url_names_the_key() -> None:
    loaded = load_section({"profile": "prod"}, env={}, source="qmtl.yml")
    with pytest.raises(ConfigError) as caught:
        await create_coordinator(loaded, env={})
    assert caught.value.key == "seamless.coordinator_url"
    assert "Prod profile requires seamless.coordinator_url" in str(caught.value)
    assert "QMTL_SEAMLESS_COORDINATOR_URL" in str(caught.value)


async def test_dev_without_url_warns_and_uses_memory() -> None:
    with capture_logs() as logs:
        coordinator = await create_coordinator(SeamlessConfig(profile="dev"), env={})
    assert isinstance(coordinator, InMemoryCoordinator)
    events = [entry for entry in logs if entry["event"] == "seamless.coordinator.in_memory"]
    assert len(events) == 1 and events[0]["log_level"] == "warning"


async def test_dev_worker_id_from_env() -> None:
    coordinator = await create_coordinator(
        SeamlessConfig(), env={"QMTL_WORKER_ID": "w-7", "HOSTNAME": "host"}
    )
    assert isinstance(coordinator, InMemoryCoordinator)
    assert coordinator.holder == "w-7"


async def test_dev_with_url_down_warns_and_uses_memory(closed_port: int) -> None:
    settings = SeamlessConfig(profile="dev", coordinator_url=f"http://127.0.0.1:{closed_port}")
    with capture_logs() as logs:
        coordinator = await create_coordinator(settings, env={})
    try:
        assert isinstance(coordinator, InMemoryCoordinator)
        warnings = [entry for entry in logs if entry["event"] == "seamless.coordinator.unhealthy"]
        assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
        assert warnings[0]["fallback"] == "in_memory"
    finally:
        await coordinator.aclose()


async def test_prod_unreachable_fails_after_bounded_retries(closed_port: int) -> None:
    settings = SeamlessConfig(
        profile="prod",
        coordinator_url=f"http://127.0.0.1:{closed_port}",
        health_attempts=3,
        health_backoff_seconds=0.1,
        health_timeout_seconds=1,
    )
    started = time.monotonic()
    with capture_logs() as logs, pytest.raises(CoordinatorStartupError, match="3 attempt"):
        await create_coordinator(settings, env={})
    elapsed = time.monotonic() - started
    failures = [entry for entry in logs if entry["event"] == "seamless.coordinator.health_failed"]
    assert [entry["attempt"] for entry in failures] == [1, 2, 3]
    assert elapsed >= 0.2  # two waits of 0.1 s between three attempts


def test_artifact_keys_of_the_config_win_over_the_environment() -> None:
    """The bundle's `sdkConfig` carries the client's own object-store keys: the publisher
    signs with them (the ARTIFACT_* variables are the fallback)."""
    from prometheus_client import CollectorRegistry
    from seamless.factory import artifact_publisher
    from seamless.metrics import SeamlessMetrics

    section = {
        "artifacts_enabled": True,
        "artifact_bucket": "qmtl-seamless",
        "artifact_endpoint": "http://127.0.0.1:9",
        "artifact_access_key": "seamless-sdk",
        "artifact_secret_key": "sdk-secret-0123",
    }
    env = {"ARTIFACT_ACCESS_KEY": "from-env", "ARTIFACT_SECRET_KEY": "env-secret"}
    metrics = SeamlessMetrics(CollectorRegistry())
    loaded = load_section(section, env={})
    assert "sdk-secret-0123" not in repr(loaded.settings)
    publisher = artifact_publisher(loaded.settings, metrics, env)
    assert publisher is not None
    creds = publisher.s3._request_signer._credentials
    assert (creds.access_key, creds.secret_key) == ("seamless-sdk", "sdk-secret-0123")
    bare = {
        k: v
        for k, v in section.items()
        if not k.startswith("artifact_") or k in ("artifact_bucket", "artifact_endpoint")
    }
    fallback = artifact_publisher(load_section(bare, env={}).settings, metrics, env)
    assert fallback is not None
    assert fallback.s3._request_signer._credentials.access_key == "from-env"
