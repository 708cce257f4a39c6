"""Per-service isolation mechanisms, rendered as plain data (no Pulumi resources here).

Each service gets its own identity on every shared dependency, scoped to its own
namespace there (which grant each service holds is declared next to it, in
`infra/catalog/<service>.py`; `infra.catalog` lists them all):

- Redis: an ACL user whose keys and channels are limited to `<prefix>:*`, plus its own DB
  index (ACLs cannot pin a DB, so the index only keeps `KEYS`-style scans apart).
- Object store (MinIO or S3): an IAM policy granting object access under its own prefix only.
- ControlBus (Apache Kafka): a SASL/SCRAM user with ACLs on topics under `qmtl.controlbus.`
  and its own consumer group prefix.
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


def kafka_acl_commands(
    grants: Iterable[KafkaGrant], *, brokers: str, admin_config: str, secret_dir: str
) -> list[str]:
    """Apache Kafka's own admin tools (`kafka-configs.sh`, `kafka-acls.sh`) creating each
    SASL/SCRAM user and its prefixed ACLs, as the superuser whose client config is
    `admin_config`.

    Passwords are read at run time from the files under `secret_dir` (mounted from a
    Secret): a user's SCRAM config goes into a 0600 Java argument file on the job's scratch
    tmpfs by the shell's own printf, so neither the script nor any command line holds one,
    and the tool's output is shown with passwords masked. Every step is
    idempotent (a user's password is set, an ACL added again is the same ACL), so the job
    may retry. The same commands are the guidance for an external Kafka (docs/deploy.md).
    """
    admin = f"--bootstrap-server {brokers} --command-config {admin_config}"
    commands = ["umask 077"]
    for grant in grants:
        args = f"/tmp/scram-{grant.user}.args"
        out = f"/tmp/scram-{grant.user}.out"
        alter = " ".join(
            [*admin.split(), "--alter", "--entity-type", "users", "--entity-name", grant.user]
        )
        commands += [
            # The password reaches kafka-configs (kafka.admin.ConfigCommand) in a Java
            # argument file, main class and all (the JVM expands a file only before the main
            # class): never on a command line, as printf is the shell's own. Its output is
            # shown with the password masked.
            f"printf '%s\\n' kafka.admin.ConfigCommand {alter} --add-config "
            f'"SCRAM-SHA-256=[iterations=8192,password=$(cat {secret_dir}/{grant.user})]" > {args}',
            f"kafka-run-class.sh @{args} > {out} 2>&1 || status=$?",
            f"rm -f {args}",
            f"sed -e 's/password=[^],]*/password=<hidden>/g' {out} && rm -f {out}",
            '[ "${status:-0}" -eq 0 ] || exit "$status"',
        ]
        ops = " ".join(f"--operation {op}" for op in grant.operations)
        commands.append(
            f"kafka-acls.sh {admin} --add --allow-principal User:{grant.user} {ops} "
            f"--topic {grant.topic_prefix} --resource-pattern-type prefixed"
        )
        commands.append(
            f"kafka-acls.sh {admin} --add --allow-principal User:{grant.user} --operation read "
            f"--group {grant.group_prefix} --resource-pattern-type prefixed"
        )
    return commands


def kafka_acl_script(
    grants: Iterable[KafkaGrant],
    *,
    brokers: str,
    admin_config: str,
    secret_dir: str,
    wait_s: int = 120,
) -> str:
    """`kafka_acl_commands` as a job's script, after waiting (at most `wait_s`) for the
    broker to answer its admin: the job may start before the broker is up."""
    wait = [
        f"deadline=$(( $(date +%s) + {wait_s} ))",
        f"until kafka-configs.sh --bootstrap-server {brokers} --command-config {admin_config} "
        "--describe --entity-type users >/dev/null 2>&1; do",
        '  if [ "$(date +%s)" -ge "$deadline" ]; then',
        f'    echo "acl-bootstrap: {brokers} did not answer the admin within {wait_s}s" >&2',
        "    exit 1",
        "  fi",
        "  sleep 2",
        "done",
    ]
    body = kafka_acl_commands(
        grants, brokers=brokers, admin_config=admin_config, secret_dir=secret_dir
    )
    return "\n".join(["#!/bin/sh", "set -eu", *wait, *body, 'echo "acl-bootstrap: done"']) + "\n"


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
