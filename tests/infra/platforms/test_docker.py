"""infra/platforms/docker.py: the pure helpers on catalog entries, and the platform under
Pulumi's mock engine: files reach read-only containers without an upload into them (dockerd
refuses those), and the partial stack leaves QMTL out.

tests/engine/docker runs the same declarations on a real dockerd."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pytest
from seamless.config.loading import load_section

from infra.catalog import Catalog
from infra.platforms.docker import dependency_order, dependency_waves, files_dirs, healthcheck
from infra.stack_config import StackConfigError, parse_stack_config
from tests.infra.harness import ProgramRun, run_program, stack_catalog, stack_file_config

pytestmark = pytest.mark.infra

CONTAINER = "docker:index/container:Container"


# --- the helpers ---------------------------------------------------------------------------


def test_files_land_in_one_volume_per_directory_no_data_volume_holds() -> None:
    cat = stack_catalog("dev")
    # the coordinator's settings and tokens share one directory
    assert files_dirs(cat.get("seamless-coordinator")) == ["/run/secrets/seamless"]
    # QuestDB's server.conf lives under its data volume: no files volume
    assert files_dirs(cat.get("questdb")) == []
    # Kafka's server.properties and start script, and its users' secrets: two directories
    assert files_dirs(cat.get("controlbus")) == ["/etc/kafka", "/run/secrets/controlbus"]


def test_the_health_check_is_the_readiness_probe_as_a_command() -> None:
    svc = stack_catalog("dev").get("gateway")
    check = healthcheck(svc)
    assert check.tests == list(svc.docker_health)
    assert (check.interval, check.timeout, check.retries, check.start_period) == (
        "10s",
        "5s",
        6,
        "10s",
    )


def test_services_start_after_the_ones_they_dial() -> None:
    order = [s.name for s in dependency_order(stack_catalog("dev"))]
    assert order.index("redis") < order.index("gateway")
    assert order.index("worldservice") < order.index("gateway")
    assert order.index("minio") < order.index("seamless-coordinator")


def test_services_come_up_in_waves_after_what_they_dial() -> None:
    assert dependency_waves(stack_catalog("partial")) == [
        ["redis", "questdb", "minio"],
        ["seamless-coordinator"],
    ]
    waves = dependency_waves(stack_catalog("dev"))
    assert waves[-1] == ["gateway"] and "worldservice" in waves[1]


def test_a_dependency_cycle_is_refused() -> None:
    cat = stack_catalog("partial")
    redis = dataclasses.replace(cat.get("redis"), connects_to=("seamless-coordinator",))
    cyclic = Catalog(
        cat.config,
        tuple(redis if s.name == "redis" else s for s in cat),
        cat.endpoints,
        cat.sdk_section,
    )
    with pytest.raises(ValueError, match="dependency cycle among services"):
        dependency_order(cyclic)


# --- the platform under mocks --------------------------------------------------------------


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _check_files_delivery(run: ProgramRun) -> None:
    containers = {c.inputs["name"]: c.inputs for c in run.mocks.of_type(CONTAINER)}
    files = {n: c for n, c in containers.items() if c.get("start") is False}
    assert files, "no files containers declared"
    for name, inputs in containers.items():
        assert not (inputs.get("readOnly") and inputs.get("uploads")), (
            f"{name}: read-only and uploads (dockerd refuses the upload)"
        )
    for name, inputs in files.items():
        service = containers[name.removesuffix("-files")]
        assert inputs.get("networkMode") == "none" and not inputs.get("mustRun"), name
        assert inputs["image"] == service["image"], name
        seeded = {v["volumeName"]: v["containerPath"] for v in inputs["volumes"]}
        mounted = {v["volumeName"]: v for v in service["volumes"]}
        for upload in inputs["uploads"]:
            holders = [vol for vol, path in seeded.items() if _under(upload["file"], path)]
            assert holders, (name, upload["file"], "lands in no volume")
            for vol in holders:  # the service sees the same volume at the same path
                assert mounted[vol]["containerPath"] == seeded[vol], (name, vol)
        for vol, mount in mounted.items():
            if "-files-" in vol:
                assert mount.get("readOnly") is True, (name, vol)


@pytest.mark.parametrize("stack", ["dev", "partial"])
@pulumi.runtime.test
def test_files_reach_read_only_containers_through_files_volumes(stack: str) -> pulumi.Output[Any]:
    run = run_program(stack, stack_file_config(stack))
    return run.bundle.settled().apply(lambda _: _check_files_delivery(run))


@pulumi.runtime.test
def test_partial_stack_runs_the_seed_services_on_local_images() -> pulumi.Output[Any]:
    config = stack_file_config("partial")
    run = run_program("partial", config)

    async def outputs() -> dict[str, Any]:
        await run.bundle.settled().future()
        return {
            "host": await run.outputs["hostSdkConfig"].future(),
            "secret": await run.outputs["hostSdkConfig"].is_secret(),
        }

    def check(out: dict[str, Any]) -> None:
        services = {
            c.inputs["name"]: c.inputs
            for c in run.mocks.of_type(CONTAINER)
            if c.inputs.get("start") is not False
        }
        assert set(services) == {"seamless-coordinator", "redis", "questdb", "minio", "prometheus"}
        for name, inputs in services.items():
            ref = inputs["image"]
            assert ref.startswith("seamless-local/"), (name, ref)
        assert services["seamless-coordinator"]["image"] == config["coordinatorImage"]
        assert services["prometheus"]["image"] == config["images"]["prometheus"]
        host = out["host"]["seamless"]
        assert out["secret"] is True
        for key in ("coordinator_url", "redis_dsn", "questdb_dsn", "artifact_endpoint"):
            assert urlsplit(host[key]).hostname == "127.0.0.1", (key, host[key])
        # the SDK reads QuestDB over the PG wire: the DSN carries its credentials
        assert urlsplit(host["questdb_dsn"]).password, "questdb_dsn without credentials"
        # the SDK takes the section as exported (found on the real engine: it refused the
        # artifact keys as unknown), and publishes artifacts with the client's own keys
        settings = load_section(host, env={}).settings
        assert settings.artifact_access_key is not None
        assert settings.artifact_access_key.get_secret_value() == host["artifact_access_key"]

    return pulumi.Output.from_input(outputs()).apply(check)


def test_prod_refuses_to_leave_qmtl_out() -> None:
    raw = {**stack_file_config("prod"), "qmtl": False}
    with pytest.raises(StackConfigError, match="qmtl is false, refused in prod"):
        parse_stack_config(raw, stack="prod")


def test_qmtl_must_be_a_boolean() -> None:
    raw = {**stack_file_config("partial"), "qmtl": "no"}
    with pytest.raises(StackConfigError, match="qmtl is 'no'; expected true or false"):
        parse_stack_config(raw, stack="partial")


@pulumi.runtime.test
def test_scratch_tmpfs_is_noexec_except_where_the_service_executes_from_it() -> pulumi.Output[Any]:
    """QuestDB maps the JNI library it extracts to /tmp executable: on dockerd a `noexec`
    tmpfs (Docker's default) killed it with "failed to map segment from shared object"."""
    run = run_program("partial", stack_file_config("partial"))
    catalog = stack_catalog("partial")

    def check(_: Any) -> None:
        services = {
            c.inputs["name"]: c.inputs
            for c in run.mocks.of_type(CONTAINER)
            if c.inputs.get("start") is not False and c.inputs["name"] in catalog.names
        }
        assert services
        for name, inputs in services.items():
            for path, options in inputs["tmpfs"].items():
                flags = options.split(",")
                want = "exec" if catalog.get(name).scratch_exec else "noexec"
                assert want in flags, (name, path, options)
        assert catalog.get("questdb").scratch_exec

    return run.bundle.settled().apply(check)
