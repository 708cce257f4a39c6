"""Generated credentials and per-service object-store identities.

`Credentials` makes every password the catalog's secret items need: with pulumi-random, or
(`credentialSource: stack`) from the stack's own `credentials` secret, which
`python -m infra.credentials` generates once; either way they are Pulumi secrets.
`ObjectStoreIdentities` declares the bucket and one identity per service with a policy
scoped to its own prefix: MinIO users/policies (pulumi-minio, for stacks whose MinIO is not
provisioned by its in-cluster Job), or an encrypted, versioned, private S3 bucket and IAM
users (pulumi-aws) for the managed override.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_minio as minio
import pulumi_random as random

from infra import isolation
from infra.catalog import OBJECT_STORE_GRANTS, SDK_CREDENTIALS, Catalog
from infra.stack_config import PROJECT, StackConfig, StackConfigError

# Credential keys that are not random passwords: object-store keys come from the store's
# identities, a managed QuestDB's password from the stack's secret config.
_ACCESS_KEY_SUFFIX = ".access_key"


def credential_keys(catalog: Catalog) -> list[str]:
    """Every credential a secret item of the catalog (or of its jobs) reads, the SDK's, and
    both keys of every object-store identity."""
    items = [item for svc in catalog for item in svc.secrets]
    items += [item for svc in catalog for job in svc.jobs for item in job.secrets]
    keys = {k for item in items for k in item.needs}
    keys.update(SDK_CREDENTIALS)
    for grant in OBJECT_STORE_GRANTS:
        keys.add(f"objectstore.{grant.identity}.access_key")
        keys.add(f"objectstore.{grant.identity}.secret_key")
    return sorted(keys)


def generated_keys(catalog: Catalog) -> list[str]:
    """The credentials the bundle generates (the rest are identity names, IAM-issued keys
    or a managed service's password from the stack's secret config)."""
    return [k for k in credential_keys(catalog) if _generated(k, catalog.config)]


def _generated(key: str, config: StackConfig) -> bool:
    if key.startswith("objectstore."):
        return config.object_store.mode != "aws" and not key.endswith(_ACCESS_KEY_SUFFIX)
    if key == "minio.root_user":
        return False
    if key == "questdb" and config.questdb is not None:
        return False
    return not (key == "redis.admin" and config.redis is not None)


class Credentials(pulumi.ComponentResource):
    """Random passwords for every service identity; `values` maps key -> secret Output."""

    passwords: dict[str, random.RandomPassword]
    aws_keys: dict[str, aws.iam.AccessKey]
    aws_users: dict[str, aws.iam.User]
    values: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, catalog: Catalog, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("seamless:identity:Credentials", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = catalog.config
        self.passwords = {}
        self.aws_keys = {}
        self.aws_users = {}
        self.values = {}
        if config.credential_source == "stack":
            missing = [k for k in generated_keys(catalog) if k not in config.stack_credentials]
            if missing:
                raise StackConfigError(
                    f"{PROJECT}:credentials lacks {', '.join(missing)}; run "
                    f"`python -m infra.credentials --stack {config.stack}` to add them"
                )
        for key in credential_keys(catalog):
            if key.startswith("objectstore.") and config.object_store.mode == "aws":
                continue  # issued by IAM below
            if key.startswith("objectstore.") and key.endswith(_ACCESS_KEY_SUFFIX):
                # MinIO access key = the identity's user name (not a secret, but it travels
                # with its secret key, so it is marked secret too)
                identity = key.split(".")[1]
                self.values[key] = pulumi.Output.secret(identity)
                continue
            if key == "minio.root_user":
                self.values[key] = pulumi.Output.secret("seamless-root")
                continue
            if key == "questdb" and config.questdb is not None:
                self.values[key] = pulumi.Output.secret(config.questdb.password)
                continue
            if key == "redis.admin" and config.redis is not None:
                self.values[key] = pulumi.Output.secret(config.redis.admin_password)
                continue
            if config.credential_source == "stack":
                self.values[key] = pulumi.Output.secret(config.stack_credentials[key])
                continue
            password = random.RandomPassword(
                f"{name}-{key.replace('.', '-')}",
                length=32,
                special=False,  # DSNs carry these in URLs: keep them URL-safe
                opts=child,
            )
            self.passwords[key] = password
            self.values[key] = pulumi.Output.secret(password.result)
        if config.object_store.mode == "aws":
            for grant in OBJECT_STORE_GRANTS:
                user = aws.iam.User(
                    f"{name}-{grant.identity}",
                    name=f"{config.stack}-{grant.identity}",
                    tags={"seamless-stack": config.stack, "service": grant.identity},
                    opts=child,
                )
                access_key = aws.iam.AccessKey(
                    f"{name}-{grant.identity}-key", user=user.name, opts=child
                )
                self.aws_users[grant.identity] = user
                self.aws_keys[grant.identity] = access_key
                self.values[f"objectstore.{grant.identity}.access_key"] = pulumi.Output.secret(
                    access_key.id
                )
                self.values[f"objectstore.{grant.identity}.secret_key"] = pulumi.Output.secret(
                    access_key.secret
                )
        self.register_outputs({"keys": sorted(self.values)})

    def render(self, needs: Sequence[str], render: object) -> pulumi.Output[str]:
        """Render one secret document from the credentials it needs (a secret Output)."""
        outputs = [self.values[k] for k in needs]

        def _apply(vals: list[str]) -> str:
            assert callable(render)
            return str(render(dict(zip(needs, vals, strict=True))))

        return pulumi.Output.secret(pulumi.Output.all(*outputs).apply(_apply))


class ObjectStoreIdentities(pulumi.ComponentResource):
    """The artifact bucket and one identity per service, scoped to its own prefix."""

    bucket_name: pulumi.Output[str]
    minio_provider: minio.Provider | None
    minio_bucket: minio.S3Bucket | None
    minio_users: dict[str, minio.IamUser]
    minio_policies: dict[str, minio.IamPolicy]
    s3_bucket: aws.s3.Bucket | None
    s3_public_access_block: aws.s3.BucketPublicAccessBlock | None
    s3_policies: dict[str, aws.iam.UserPolicy]

    def __init__(
        self,
        name: str,
        catalog: Catalog,
        credentials: Credentials,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("seamless:identity:ObjectStoreIdentities", name, None, opts)
        config = catalog.config
        bucket = config.object_store.bucket
        self.minio_provider = None
        self.minio_bucket = None
        self.minio_users = {}
        self.minio_policies = {}
        self.s3_bucket = None
        self.s3_public_access_block = None
        self.s3_policies = {}
        if config.object_store.mode == "minio":
            self._minio(name, bucket, config.minio_admin_endpoint, credentials, depends_on)
        else:
            self._aws(name, bucket, config.stack, credentials)
        self.bucket_name = pulumi.Output.from_input(bucket)
        self.register_outputs({"bucket": bucket})

    def _minio(
        self,
        name: str,
        bucket: str,
        endpoint: str,
        credentials: Credentials,
        depends_on: Sequence[pulumi.Resource],
    ) -> None:
        # The provider talks to the MinIO this bundle runs, so it waits for that workload.
        self.minio_provider = minio.Provider(
            f"{name}-minio",
            minio_server=endpoint,
            minio_user=credentials.values["minio.root_user"],
            minio_password=credentials.values["minio.root_password"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        on_minio = pulumi.ResourceOptions(parent=self, provider=self.minio_provider)
        self.minio_bucket = minio.S3Bucket(
            f"{name}-bucket", bucket=bucket, acl="private", opts=on_minio
        )
        for grant in OBJECT_STORE_GRANTS:
            user = minio.IamUser(
                f"{name}-{grant.identity}",
                name=grant.identity,
                secret=credentials.values[f"objectstore.{grant.identity}.secret_key"],
                opts=on_minio,
            )
            policy = minio.IamPolicy(
                f"{name}-{grant.identity}-policy",
                name=f"{grant.identity}-own-prefix",
                policy=isolation.object_store_policy_json(bucket, grant),
                opts=on_minio,
            )
            minio.IamUserPolicyAttachment(
                f"{name}-{grant.identity}-attach",
                user_name=user.name,
                policy_name=policy.name,
                opts=on_minio,
            )
            self.minio_users[grant.identity] = user
            self.minio_policies[grant.identity] = policy

    def _aws(self, name: str, bucket: str, stack: str, credentials: Credentials) -> None:
        child = pulumi.ResourceOptions(parent=self)
        self.s3_bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=bucket, tags={"seamless-stack": stack}, opts=child
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.s3_bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.s3_bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        self.s3_public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.s3_bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        for grant in OBJECT_STORE_GRANTS:
            self.s3_policies[grant.identity] = aws.iam.UserPolicy(
                f"{name}-{grant.identity}-policy",
                user=credentials.aws_users[grant.identity].name,
                policy=isolation.object_store_policy_json(bucket, grant),
                opts=child,
            )


def secret_map(credentials: Credentials, keys: Mapping[str, str]) -> dict[str, pulumi.Output[str]]:
    """Pick credentials by key under new names (e.g. for stack outputs)."""
    return {out: credentials.values[key] for out, key in keys.items()}
