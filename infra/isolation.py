"""Per-service isolation mechanisms, rendered as plain data (no Pulumi resources here).

Each service gets its own identity on every shared dependency, scoped to its own
namespace there (which grant each service holds is declared next to it, in
`infra/catalog/<service>.py`; `infra.catalog` lists them all):

- Redis: an ACL user whose keys and channels are limited to `<prefix>:*`, plus its own DB
  index (ACLs cannot pin a DB, so the index only keeps `KEYS`-style scans apart).
- Object store (MinIO or S3): an IAM policy granting object access under its own prefix only.
- ControlBus (Redpanda/Kafka): a SASL user with ACLs on topics under `qmtl.controlbus.` and
  its own consumer group prefix.
- QuestDB: the coordinator's tables carry the `seamless_` prefix (QuestDB OSS has one PG user,
  so the prefix is a convention the SDK enforces, not an ACL).

These functions are used by the platforms and, directly, by the real-server tests that load
the ACL lines into a real Redis and the policies into a real MinIO.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RedisGrant:
    user: str
    key_prefix: str  # without the trailing ':*'
    db: int


@dataclass(frozen=True)
class ObjectStoreGrant:
    identity: str
    prefix: str  # e.g. "artifacts/"; always ends with "/"


@dataclass(frozen=True)
class KafkaGrant:
    user: str
    topic_prefix: str
    group_prefix: str
    operations: tuple[str, ...] = ("read", "write", "describe", "create")


# The categories every service needs; @admin and @dangerous (FLUSHALL, KEYS, CONFIG, DEBUG,
# ...) stay denied so one service cannot wipe or scan another's data.
_REDIS_SERVICE_RULES = "+@all -@admin -@dangerous"


def redis_password_hash(password: str) -> str:
    """Redis ACL files accept `#<sha256 hex>` so the file never holds a password."""
    return hashlib.sha256(password.encode()).hexdigest()


def redis_acl_rules(grant: RedisGrant, password: str) -> list[str]:
    """The rules of one service user, as `ACL SETUSER <user> <rules...>` takes them."""
    return [
        "reset",
        "on",
        f"#{redis_password_hash(password)}",
        f"~{grant.key_prefix}:*",
        f"&{grant.key_prefix}:*",
        *_REDIS_SERVICE_RULES.split(),
    ]


def redis_acl_file(
    grants: Iterable[RedisGrant], passwords: Mapping[str, str], admin_password: str
) -> str:
    """A complete `aclfile`: the default user only answers PING (health probes), one admin
    user for operators, one scoped user per service."""
    lines = [
        "user default on nopass resetkeys resetchannels -@all +ping",
        f"user seamless-admin on #{redis_password_hash(admin_password)} ~* &* +@all",
    ]
    for grant in grants:
        lines.append(
            f"user {grant.user} " + " ".join(redis_acl_rules(grant, passwords[grant.user]))
        )
    return "\n".join(lines) + "\n"


def redis_url(user: str, password: str, host: str, port: int, db: int) -> str:
    return f"redis://{user}:{password}@{host}:{port}/{db}"


def object_store_policy(
    bucket: str, grant: ObjectStoreGrant, *, partition: str = "aws"
) -> dict[str, Any]:
    """An IAM policy document for one identity: objects under its prefix, listing limited to
    that prefix, nothing else in the bucket (MinIO and S3 read the same document)."""
    if not grant.prefix.endswith("/"):
        raise ValueError(f"object store prefix {grant.prefix!r} must end with '/'")
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListOwnPrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [bucket_arn],
                "Condition": {"StringLike": {"s3:prefix": [f"{grant.prefix}*"]}},
            },
            {
                "Sid": "ReadWriteOwnPrefix",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [f"{bucket_arn}/{grant.prefix}*"],
            },
        ],
    }


def object_store_policy_json(
    bucket: str, grant: ObjectStoreGrant, *, partition: str = "aws"
) -> str:
    return json.dumps(object_store_policy(bucket, grant, partition=partition), sort_keys=True)


def kafka_grant(user: str, topic_prefix: str) -> KafkaGrant:
    return KafkaGrant(user=user, topic_prefix=topic_prefix, group_prefix=f"{user}.")


def kafka_grants(users: Iterable[str], topic_prefix: str) -> tuple[KafkaGrant, ...]:
    return tuple(kafka_grant(user, topic_prefix) for user in users)


def kafka_acl_commands(grants: Iterable[KafkaGrant], *, brokers: str) -> list[str]:
    """`rpk` commands that create each SASL user and its prefixed ACLs.

    Passwords are read at run time from files under /run/secrets/controlbus (mounted from a
    Secret), so the rendered script holds none. The same commands are the guidance for an
    external Kafka (with kafka-acls.sh equivalents in docs/deploy.md).
    """
    admin = (
        f"-X brokers={brokers} -X sasl.mechanism=SCRAM-SHA-256 -X user=controlbus-admin "
        '-X pass="$(cat /run/secrets/controlbus/controlbus-admin)"'
    )
    commands = []
    for grant in grants:
        secret = f'"$(cat /run/secrets/controlbus/{grant.user})"'
        commands.append(
            f"rpk security user create {grant.user} -p {secret} --mechanism SCRAM-SHA-256 "
            f"{admin} || true"
        )
        ops = " ".join(f"--operation {op}" for op in grant.operations)
        commands.append(
            f"rpk security acl create --allow-principal User:{grant.user} {ops} "
            f"--topic {grant.topic_prefix} --resource-pattern-type prefixed {admin}"
        )
        commands.append(
            f"rpk security acl create --allow-principal User:{grant.user} --operation read "
            f"--group {grant.group_prefix} --resource-pattern-type prefixed {admin}"
        )
    return commands


def kafka_acl_script(grants: Iterable[KafkaGrant], *, brokers: str) -> str:
    return "\n".join(["#!/bin/sh", "set -eu", *kafka_acl_commands(grants, brokers=brokers)]) + "\n"


def object_store_bootstrap_script(
    bucket: str,
    grants: Iterable[ObjectStoreGrant],
    *,
    endpoint: str,
    secret_dir: str,
    policy_dir: str,
) -> str:
    """A MinIO client (`mc`) script that creates the private bucket and, per identity, its
    user and own-prefix policy (the same documents `object_store_policy_json` renders).

    Every step is idempotent, so the Job may retry. Credentials are read from files at run
    time into an `MC_HOST_*` variable of the script's own process: none is in the script, on
    a command line, or in the pod spec.
    """
    lines = [
        "#!/bin/sh",
        "set -eu",
        f'root_user="$(cat {secret_dir}/root_user)"',
        f'root_password="$(cat {secret_dir}/root_password)"',
        f'export MC_HOST_bundle="http://${{root_user}}:${{root_password}}@{endpoint}"',
        f"mc mb --ignore-existing bundle/{bucket}",
        f"mc anonymous set none bundle/{bucket}",
    ]
    for grant in grants:
        policy = f"{grant.identity}-own-prefix"
        lines += [
            f'mc admin user add bundle {grant.identity} "$(cat {secret_dir}/{grant.identity})"',
            f"mc admin policy create bundle {policy} {policy_dir}/{grant.identity}.json",
            # attaching twice is refused; the check after it is what must hold
            f"mc admin policy attach bundle {policy} --user {grant.identity} || true",
            f"mc admin user info bundle {grant.identity} | grep -q {policy}",
        ]
    return "\n".join(lines) + "\n"
