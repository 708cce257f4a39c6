"""Runs the real Pulumi program (`__main__.py` → `infra.main`) against Pulumi's mock engine.

Mocks stand in for the engine only: every resource the program declares is recorded with
its inputs (as the engine would receive them) so tests can inspect the full resource list.
"""

from __future__ import annotations

import copy
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.settings import set_root_resource
from pulumi.runtime.stack import Stack

from infra.catalog import Catalog, ServiceSpec, build_catalog
from infra.components.identity import generated_keys
from infra.credentials import fill
from infra.stack_config import StackConfigError, parse_stack_config

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "seamless-stack"


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]  # secrets unwrapped
    secret_paths: list[str] = field(default_factory=list)  # where the engine saw a secret


def unwrap_secrets(value: Any, path: str, found: list[str]) -> Any:
    """The engine receives secrets as {sig: secret-sig, value: ...}; unwrap them and note
    where they were, so tests can check that a value was marked secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            found.append(path)
            return unwrap_secrets(value["value"], path, found)
        return {k: unwrap_secrets(v, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    resources: list[Recorded] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        secret_paths: list[str] = []
        inputs = unwrap_secrets(copy.deepcopy(dict(args.inputs)), "", secret_paths)
        self.resources.append(Recorded(args.typ, args.name, inputs, secret_paths))
        outputs = dict(inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = (
                f"pw{abs(hash(args.name)) % 10**12:012d}x{len(args.name):04d}abcdefgh"
            )
        elif args.typ == "aws:iam/accessKey:AccessKey":
            outputs["secret"] = f"awssecret-{args.name}-0123456789"
            return f"AKIA{abs(hash(args.name)) % 10**12:012d}", outputs
        elif args.typ == "docker:index/image:Image":
            outputs["repoDigest"] = f"{inputs['imageName']}@sha256:{'ab' * 32}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def types(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.resources:
            out[r.typ] = out.get(r.typ, 0) + 1
        return dict(sorted(out.items()))


@dataclass
class ProgramRun:
    mocks: RecordingMocks
    namespace: dict[str, Any]
    outputs: dict[str, Any]

    @property
    def bundle(self) -> Any:
        return self.namespace["bundle"]


def stack_file_config(stack: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in data["config"].items()}


def run_program(
    stack: str, config: dict[str, Any], secrets: dict[str, str] | None = None
) -> ProgramRun:
    """Set mocks and config, then run the entry point inside a Stack (as the engine does).

    Call it inside a `@pulumi.runtime.test` function and return an Output built on
    `run.bundle.settled()` so every registration is done before assertions run.
    """
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    secrets = dict(secrets or {})
    if config.get("credentialSource") == "stack" and "credentials" not in secrets:
        secrets["credentials"] = json.dumps(generated_credentials(stack, config, secrets))
    flat: dict[str, str] = {}
    for key, value in config.items():
        flat[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    for key, value in (secrets or {}).items():
        flat[f"{PROJECT}:{key}"] = value
    pulumi.runtime.set_all_config(flat, secret_keys=[f"{PROJECT}:{k}" for k in (secrets or {})])
    namespace: dict[str, Any] = {}

    def program() -> None:
        namespace.update(runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))

    set_root_resource(None)  # type: ignore[arg-type]  # the previous run's Stack stays installed
    stack_resource = Stack(program)
    return ProgramRun(mocks=mocks, namespace=namespace, outputs=stack_resource.outputs)


def generated_credentials(
    stack: str, config: dict[str, Any], secrets: dict[str, str] | None = None
) -> dict[str, str]:
    """What `python -m infra.credentials --stack STACK` stores for this config."""
    raw = {**config, "credentialSource": "random"}
    try:
        parsed = parse_stack_config(raw, stack=stack, secrets=secrets or {})
    except StackConfigError:
        return {}  # the program itself reports the mistake
    return fill({}, generated_keys(build_catalog(parsed)))


def stack_catalog(
    stack: str, changes: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> Catalog:
    """The catalog a stack file (with `changes`) builds: pure, no Pulumi involved."""
    config = {**stack_file_config(stack), **(changes or {})}
    secrets = dict(secrets or {})
    if config.get("credentialSource") == "stack":
        secrets["credentials"] = json.dumps(generated_credentials(stack, config, secrets))
    return build_catalog(parse_stack_config(config, stack=stack, secrets=secrets))


class AnyCredentials(dict[str, str]):
    """Stands in for the generated credentials: every key has a recognisable value."""

    def __missing__(self, key: str) -> str:
        return f"pw-{key}"


def rendered(svc: ServiceSpec, key: str) -> tuple[tuple[str, ...], str]:
    """The secret item `key` of `svc`: the credentials it reads, and its text rendered from
    stand-in values."""
    item = next(i for i in svc.secrets if i.key == key)
    return item.needs, item.render(AnyCredentials())


MANAGED_OVERRIDES: dict[str, Any] = {
    "questdb": {
        "external": True,
        "dsn": "postgresql://qdb.managed.example:8812/qmtl",
        "username": "seamless",
    },
    "objectStore": {"mode": "aws", "bucket": "qmtl-seamless", "region": "eu-west-1"},
}
MANAGED_SECRETS = {"questdbPassword": "managed-questdb-password-0123"}


def prod_managed_config() -> dict[str, Any]:
    config = stack_file_config("prod")
    config.update(MANAGED_OVERRIDES)
    seamless = dict(config["seamless"])
    seamless["questdb_dsn"] = MANAGED_OVERRIDES["questdb"]["dsn"]
    seamless["artifact_endpoint"] = "https://s3.eu-west-1.amazonaws.com"
    config["seamless"] = seamless
    return config
