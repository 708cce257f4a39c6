"""infra/catalog/neo4j.py: the DAG manager's graph store, prod only."""

from __future__ import annotations

import pytest

from infra.catalog import neo4j
from tests.infra.harness import rendered, stack_catalog

pytestmark = pytest.mark.unit


def test_neo4j_reads_its_auth_from_a_file_in_prod_only() -> None:
    assert neo4j.NAME not in stack_catalog("dev")
    svc = stack_catalog("prod").get(neo4j.NAME)
    _, auth = rendered(svc, "neo4j_auth")
    assert auth == "neo4j/pw-neo4j" and svc.env["NEO4J_AUTH_FILE"].endswith("/neo4j_auth")
    assert not svc.read_only_root  # its entrypoint rewrites conf/
