"""infra/catalog/postgres.py: one database and owner role per service that declares one."""

from __future__ import annotations

import pytest

from infra.catalog import postgres
from tests.infra.harness import stack_catalog

pytestmark = pytest.mark.unit


def test_the_init_script_creates_each_database_closed_to_others() -> None:
    script = postgres.init_script(("gateway", "worldservice"))
    assert script == (
        "#!/bin/sh\nset -eu\n"
        'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL\n'
        "CREATE ROLE gateway LOGIN PASSWORD '$(cat /run/secrets/postgres/gateway)';\n"
        "CREATE DATABASE gateway OWNER gateway;\n"
        "CREATE ROLE worldservice LOGIN PASSWORD '$(cat /run/secrets/postgres/worldservice)';\n"
        "CREATE DATABASE worldservice OWNER worldservice;\n"
        "REVOKE ALL ON DATABASE gateway FROM PUBLIC;\n"
        "REVOKE ALL ON DATABASE worldservice FROM PUBLIC;\n"
        "SQL\n"
    )


def test_prod_only_with_a_password_file_per_database() -> None:
    assert postgres.NAME not in stack_catalog("dev")
    svc = stack_catalog("prod").get(postgres.NAME)
    assert {s.key: s.needs for s in svc.secrets} == {
        "superuser": ("postgres.superuser",),
        "gateway": ("postgres.gateway",),
        "worldservice": ("postgres.worldservice",),
    }
