"""infra/catalog/minio.py: the bundled object store, bootstrapped by a Job on Kubernetes."""

from __future__ import annotations

import pytest

from infra.catalog import OBJECT_STORE_GRANTS, minio
from tests.infra.harness import MANAGED_SECRETS, prod_managed_config, stack_catalog

pytestmark = pytest.mark.unit


def test_the_bootstrap_job_provisions_every_identity() -> None:
    svc = stack_catalog("prod").get(minio.NAME)
    (job,) = svc.jobs
    assert job.name == minio.BOOTSTRAP_JOB and job.image.startswith("minio/mc:")
    policies = [c.key for c in job.config_files if c.key.endswith(".json")]
    assert policies == [f"{g.identity}.json" for g in OBJECT_STORE_GRANTS]
    assert {s.key for s in job.secrets} == {
        "root_user",
        "root_password",
        *(g.identity for g in OBJECT_STORE_GRANTS),
    }


def test_docker_publishes_it_off_questdbs_port_and_provisions_by_provider() -> None:
    svc = stack_catalog("dev").get(minio.NAME)
    assert [p.host_port for p in svc.ports] == [9010, 9011]
    assert svc.jobs == ()


def test_s3_replaces_it() -> None:
    cat = stack_catalog("prod", prod_managed_config(), MANAGED_SECRETS)
    assert minio.NAME not in cat
    assert cat.endpoints.artifact_endpoint == "https://s3.eu-west-1.amazonaws.com"
