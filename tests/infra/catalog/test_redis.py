"""infra/catalog/redis.py: one ACL user per registered grant, or a managed Redis."""

from __future__ import annotations

import pytest

from infra.catalog import REDIS_GRANTS, redis
from infra.stack_config import parse_stack_config
from tests.infra.harness import rendered, stack_catalog, stack_file_config

pytestmark = pytest.mark.unit


def test_its_acl_file_holds_every_service_user() -> None:
    # every grant, even of services this stack leaves out (the partial stack has no QMTL)
    svc = stack_catalog("partial").get(redis.NAME)
    needs, acl = rendered(svc, "users.acl")
    assert set(needs) == {"redis.admin", *(f"redis.{g.user}" for g in REDIS_GRANTS)}
    users = [line.split()[1] for line in acl.splitlines()]
    assert users == ["default", "seamless-admin", *(g.user for g in REDIS_GRANTS)]


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [("redis.example:6380", ("redis.example", 6380)), ("redis.example", ("redis.example", 6379))],
)
def test_a_managed_redis_is_an_endpoint(url: str, endpoint: tuple[str, int]) -> None:
    config = {**stack_file_config("dev"), "redis": {"external": True, "url": url}}
    parsed = parse_stack_config(config, stack="dev", secrets={"redisAdminPassword": "x"})
    assert redis.endpoint(parsed) == endpoint
    assert not redis.bundled(parsed) and redis.edges(parsed) == ()
