"""The bundle's isolation config proven on real servers: the generated Redis ACL file loaded
by a real redis-server, the MinIO users and policies applied to a real MinIO, and the
IAM policy documents linted by parliament."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import parliament
import pytest
import redis
from botocore.client import Config
from botocore.exceptions import ClientError
from minio.credentials import StaticProvider
from minio.minioadmin import MinioAdmin

from infra import catalog, isolation
from lab.servers import MinioServer, RedisServer

pytestmark = pytest.mark.infra

PASSWORDS = {g.user: f"{g.user}-password-0123456789" for g in catalog.REDIS_GRANTS}
ADMIN_PASSWORD = "admin-password-0123456789"


class AclRedisServer(RedisServer):
    """redis-server started with the bundle's generated aclfile."""

    def command(self) -> list[str]:
        return [*super().command(), "--aclfile", str(self.workdir / "users.acl")]


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclRedisServer]:
    workdir = tmp_path_factory.mktemp("acl-redis")
    acl = isolation.redis_acl_file(catalog.REDIS_GRANTS, PASSWORDS, ADMIN_PASSWORD)
    (workdir / "users.acl").write_text(acl)
    assert all(p not in acl for p in PASSWORDS.values())  # only hashes in the file
    with AclRedisServer(workdir=Path(workdir)) as server:
        yield server


def _client(server: RedisServer, user: str, password: str, db: int = 0) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, username=user, password=password, db=db)


@pytest.mark.parametrize("grant", catalog.REDIS_GRANTS, ids=lambda g: g.user)
def test_redis_user_touches_only_its_own_prefix(
    acl_redis: AclRedisServer, grant: isolation.RedisGrant
) -> None:
    client = _client(acl_redis, grant.user, PASSWORDS[grant.user], grant.db)
    own = f"{grant.key_prefix}:probe"
    assert client.set(own, "1") and client.get(own) == b"1"
    client.delete(own)
    for other in catalog.REDIS_GRANTS:
        if other.key_prefix == grant.key_prefix:
            continue
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set(f"{other.key_prefix}:probe", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get(f"{other.key_prefix}:probe")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.keys("*")


def test_redis_default_user_only_pings_and_wrong_password_fails(acl_redis: AclRedisServer) -> None:
    anonymous = redis.Redis(host=acl_redis.host, port=acl_redis.port)
    assert anonymous.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        anonymous.get("seamless:x")
    with pytest.raises(redis.exceptions.AuthenticationError):
        _client(acl_redis, "gateway", "wrong-password").ping()
    admin = _client(acl_redis, "seamless-admin", ADMIN_PASSWORD)
    assert admin.set("gateway:by-admin", "1") and admin.set("seamless:by-admin", "1")


# --- MinIO ---------------------------------------------------------------------------------

BUCKET = "qmtl-seamless-isolation"


def _s3(server: MinioServer, access: str, secret: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def minio_identities(minio_server: MinioServer) -> dict[str, str]:
    """Apply the bundle's users, policies and bucket (what pulumi-minio declares)."""
    admin = MinioAdmin(
        endpoint=minio_server.endpoint.removeprefix("http://"),
        credentials=StaticProvider(minio_server.access_key, minio_server.secret_key),
        secure=False,
    )
    root = _s3(minio_server, minio_server.access_key, minio_server.secret_key)
    try:
        root.create_bucket(Bucket=BUCKET)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    secrets: dict[str, str] = {}
    for grant in catalog.OBJECT_STORE_GRANTS:
        secret = f"{grant.identity}-secret-0123456789"
        admin.user_add(grant.identity, secret)
        policy_name = f"{grant.identity}-own-prefix"
        admin.policy_add(policy_name, policy=isolation.object_store_policy(BUCKET, grant))
        admin.attach_policy([policy_name], user=grant.identity)
        secrets[grant.identity] = secret
    return secrets


@pytest.mark.parametrize("grant", catalog.OBJECT_STORE_GRANTS, ids=lambda g: g.identity)
def test_minio_identity_writes_only_its_own_prefix(
    minio_server: MinioServer, minio_identities: dict[str, str], grant: isolation.ObjectStoreGrant
) -> None:
    s3 = _s3(minio_server, grant.identity, minio_identities[grant.identity])
    key = f"{grant.prefix}isolation/{grant.identity}.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=io.BytesIO(b"ok"))
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"ok"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=grant.prefix)
    assert any(o["Key"] == key for o in listed.get("Contents", []))
    other_prefixes = {g.prefix for g in catalog.OBJECT_STORE_GRANTS} - {grant.prefix}
    for prefix in [*sorted(other_prefixes), "", "elsewhere/"]:
        with pytest.raises(ClientError) as denied:
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}intruder.bin", Body=io.BytesIO(b"x"))
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    for prefix in sorted(other_prefixes):
        with pytest.raises(ClientError) as denied:
            s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3.create_bucket(Bucket=f"{grant.identity.replace('_', '-')}-own-bucket")


def test_policy_documents_are_the_ones_the_bundle_declares() -> None:
    doc = json.loads(isolation.object_store_policy_json(BUCKET, catalog.OBJECT_STORE_GRANTS[0]))
    assert doc["Statement"][1]["Resource"] == [f"arn:aws:s3:::{BUCKET}/artifacts/*"]


def test_iam_policies_pass_parliament() -> None:
    for grant in catalog.OBJECT_STORE_GRANTS:
        doc = isolation.object_store_policy_json("qmtl-seamless", grant)
        findings = parliament.analyze_policy_string(doc).findings
        assert findings == [], (grant.identity, [str(f) for f in findings])
