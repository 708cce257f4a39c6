"""Postgres (prod): one database and login role per service that declares one."""

from __future__ import annotations

from infra.catalog.model import (
    BuildContext,
    ConfigFile,
    Entry,
    Port,
    Probe,
    ServiceSpec,
    Volume,
    credential_file,
    resources,
)

NAME = "postgres"
PORT = 5432
SECRET_DIR = "/run/secrets/postgres"


def dsn(database: str, password: str) -> str:
    """A service's DSN: its own role, named like its database."""
    return f"postgresql://{database}:{password}@{NAME}:{PORT}/{database}"


def init_script(databases: tuple[str, ...]) -> str:
    """Creates each database with its owner role, closed to every other role."""
    lines = ["#!/bin/sh", "set -eu", 'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL']
    for db in databases:
        lines.append(f"CREATE ROLE {db} LOGIN PASSWORD '$(cat {SECRET_DIR}/{db})';")
        lines.append(f"CREATE DATABASE {db} OWNER {db};")
    lines += [f"REVOKE ALL ON DATABASE {db} FROM PUBLIC;" for db in databases]
    return "\n".join([*lines, "SQL"]) + "\n"


def build(ctx: BuildContext) -> ServiceSpec | None:
    if not ctx.prod:
        return None
    return ServiceSpec(
        name=NAME,
        image=ctx.config.images[NAME],
        ports=(Port("postgres", PORT, ctx.host_port(PORT)),),
        resources=resources("250m", "1", 256, 1024),
        readiness=Probe(PORT, initial_delay_s=5),
        liveness=Probe(PORT, initial_delay_s=30),
        docker_health=("CMD", "pg_isready", "-U", "postgres"),
        env={
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD_FILE": f"{SECRET_DIR}/superuser",
            "PGDATA": "/var/lib/postgresql/data/pgdata",
        },
        config_files=(
            ConfigFile(
                "init.sh",
                "/docker-entrypoint-initdb.d/10-services.sh",
                init_script(ctx.postgres_databases),
            ),
        ),
        secrets=tuple(
            credential_file(who, f"postgres.{who}", f"{SECRET_DIR}/{who}")
            for who in ("superuser", *ctx.postgres_databases)
        ),
        volumes=(Volume("data", "/var/lib/postgresql/data", 10),),
        stateful=True,
        run_as_user=70,
        scratch_paths=("/tmp", "/var/run/postgresql"),
    )


ENTRY = Entry(name=NAME, build=build, images={NAME: "postgres:16.4-alpine"})
