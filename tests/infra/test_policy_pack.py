"""The policy pack's rules on good and bad resources, and its verdict on the real dev and prod
stacks (called directly: no Pulumi CLI here)."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest
from seamless_policies import (
    StackResource,
    bucket_has_public_access_block,
    check_all,
    limits_on_every_container,
    network_policy_in_prod,
    no_latest_in_prod,
    no_plaintext_secret_in_env,
    no_public_bucket,
    probes_present,
)

from tests.infra.harness import run_program, stack_file_config

pytestmark = pytest.mark.infra

PROD = "urn:pulumi:prod::seamless-stack::kubernetes:apps/v1:Deployment::x"
DEV = "urn:pulumi:dev::seamless-stack::kubernetes:apps/v1:Deployment::x"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONTAINER = "docker:index/container:Container"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def deployment(**container: Any) -> dict[str, Any]:
    base = {
        "name": "app",
        "image": "ghcr.io/qmtl/gateway:0.1.0",
        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/status", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/status", "port": 8080}},
        "env": [{"name": "QMTL_CONFIG", "value": "/etc/qmtl/config.yml"}],
    }
    base.update(container)
    return {
        "metadata": {"name": "app", "namespace": "seamless"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "app"}},
                "spec": {"containers": [base]},
            }
        },
    }


def docker_container(**props: Any) -> dict[str, Any]:
    base = {
        "name": "app",
        "image": "redis:7.4.1-alpine",
        "memory": 512,
        "cpus": "0.5",
        "healthcheck": {"tests": ["CMD", "redis-cli", "ping"]},
        "envs": ["POSTGRES_PASSWORD_FILE=/run/secrets/pg"],
    }
    base.update(props)
    return base


def test_good_resources_pass_every_rule() -> None:
    for rule in (
        limits_on_every_container,
        no_latest_in_prod,
        no_plaintext_secret_in_env,
        probes_present,
    ):
        assert rule(DEPLOYMENT, deployment(), PROD) == []
        assert rule(CONTAINER, docker_container(), PROD) == []


def test_public_buckets_are_refused() -> None:
    assert no_public_bucket("aws:s3/bucket:Bucket", {"acl": "public-read"})
    assert no_public_bucket("minio:index/s3Bucket:S3Bucket", {"acl": "public"})
    assert not no_public_bucket("minio:index/s3Bucket:S3Bucket", {"acl": "private"})
    block = {
        k: True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    }
    typ = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    assert not no_public_bucket(typ, block)
    assert no_public_bucket(typ, {**block, "restrictPublicBuckets": False})
    policy = '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}'
    assert no_public_bucket("aws:s3/bucketPolicy:BucketPolicy", {"policy": policy})
    buckets = [StackResource("aws:s3/bucket:Bucket", {}, "u")]
    assert bucket_has_public_access_block(buckets)
    assert not bucket_has_public_access_block([*buckets, StackResource(typ, block, "u")])


def test_missing_limits_are_refused() -> None:
    assert limits_on_every_container(
        DEPLOYMENT, deployment(resources={"requests": {"cpu": "1"}}), PROD
    )
    assert limits_on_every_container(CONTAINER, docker_container(memory=None), PROD)
    assert limits_on_every_container(CONTAINER, docker_container(cpus=None), PROD)


def test_latest_is_refused_in_prod_only() -> None:
    for image in ("redis:latest", "redis", "ghcr.io/qmtl/gateway"):
        assert no_latest_in_prod(DEPLOYMENT, deployment(image=image), PROD), image
        assert no_latest_in_prod(DEPLOYMENT, deployment(image=image), DEV) == []
    assert no_latest_in_prod(DEPLOYMENT, deployment(image="localhost:5000/x:1.0"), PROD) == []
    assert no_latest_in_prod(DEPLOYMENT, deployment(image="r/x@sha256:" + "a" * 64), PROD) == []
    assert no_latest_in_prod(CONTAINER, docker_container(image="minio/minio:latest"), PROD)


def test_plaintext_secrets_in_env_are_refused() -> None:
    bad_env = [
        {"name": "REDIS_PASSWORD", "value": "hunter2"},
        {"name": "REDIS_DSN", "value": "redis://user:hunter2@redis:6379/0"},
        {"name": "COORDINATOR_AUTH_TOKEN", "value": "abc"},
    ]
    for env in bad_env:
        assert no_plaintext_secret_in_env(DEPLOYMENT, deployment(env=[env]), PROD), env
    from_secret = {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
    }
    assert no_plaintext_secret_in_env(DEPLOYMENT, deployment(env=[from_secret]), PROD) == []
    assert no_plaintext_secret_in_env(
        CONTAINER, docker_container(envs=["MINIO_ROOT_PASSWORD=x"]), PROD
    )
    assert no_plaintext_secret_in_env(
        CONTAINER, docker_container(envs=["DSN=postgresql://a:b@h/db"]), PROD
    )


def test_missing_probes_are_refused() -> None:
    assert probes_present(DEPLOYMENT, deployment(livenessProbe=None), PROD)
    assert probes_present(DEPLOYMENT, deployment(readinessProbe=None), PROD)
    assert probes_present(CONTAINER, docker_container(healthcheck=None), PROD)


def _netpol(name: str, spec: dict[str, Any]) -> StackResource:
    return StackResource(
        NETPOL, {"metadata": {"name": name, "namespace": "seamless"}, "spec": spec}, PROD
    )


def test_prod_needs_default_deny_and_an_allow_policy_per_workload() -> None:
    workload = StackResource(DEPLOYMENT, deployment(), PROD)
    deny = _netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    allow = _netpol(
        "allow",
        {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
            "policyTypes": ["Ingress"],
            "ingress": [],
        },
    )
    assert network_policy_in_prod([workload, deny, allow]) == []
    assert network_policy_in_prod([workload, allow])  # no default deny
    assert network_policy_in_prod([workload, deny])  # nothing selects the pods
    dev_workload = StackResource(DEPLOYMENT, deployment(), DEV)
    assert network_policy_in_prod([dev_workload]) == []
    other = copy.deepcopy(deployment())
    other["metadata"]["namespace"] = "elsewhere"
    assert network_policy_in_prod([StackResource(DEPLOYMENT, other, PROD), deny, allow])


def test_a_never_started_docker_container_needs_no_health_check() -> None:
    from seamless_policies import DOCKER_CONTAINER, probes_present

    assert probes_present(DOCKER_CONTAINER, {"name": "redis-files", "start": False}) == []
    assert probes_present(DOCKER_CONTAINER, {"name": "redis"}) == [
        "container 'redis' has no health check"
    ]


@pytest.mark.parametrize("stack", ["prod", "dev", "deps"])
@pulumi.runtime.test
def test_policy_pack_passes_the_real_stack(stack: str) -> pulumi.Output[Any]:
    run = run_program(stack, stack_file_config(stack))

    def check(_: Any) -> None:
        urn = f"urn:pulumi:{stack}::seamless-stack::{{}}::{{}}"
        resources = [
            StackResource(r.typ, r.inputs, urn.format(r.typ, r.name)) for r in run.mocks.resources
        ]
        assert check_all(resources) == {}

    return run.bundle.settled().apply(check)
