"""`python -m infra.credentials --stack NAME`: generate the stack's passwords once, into its
`seamless-stack:credentials` secret, for stacks with `credentialSource: stack`.

Needs only the Pulumi CLI (no random provider): it reads the stack's config to know which
credentials its catalog needs, keeps every value already stored, generates the missing ones,
and writes the secret back through the CLI's standard input (never a command line or log).
Run it again after adding a service: it only fills the gaps. `--rotate KEY` replaces one.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.catalog import build_catalog
from infra.components.identity import generated_keys
from infra.stack_config import (
    CONFIG_KEYS,
    PROJECT,
    SECRET_KEYS,
    StackConfigError,
    parse_stack_config,
)

KEY = f"{PROJECT}:credentials"


class CredentialsError(RuntimeError):
    """The CLI refused a step; the message says which and why."""


def new_password() -> str:
    # 32 hex characters: URL-safe, since DSNs carry these in URLs.
    return secrets.token_hex(16)


def fill(
    existing: Mapping[str, str], needed: Sequence[str], rotate: Sequence[str] = ()
) -> dict[str, str]:
    """Keep stored values, add missing ones, replace the rotated ones."""
    out = {k: v for k, v in existing.items() if k not in rotate}
    for key in needed:
        if key not in out:
            out[key] = new_password()
    return out


def needed_keys(config_json: Mapping[str, Any], stack: str) -> list[str]:
    """The generated credentials a stack's catalog needs, from `pulumi config --json`."""
    raw: dict[str, Any] = {}
    present_secrets: dict[str, str] = {}
    for full, entry in config_json.items():
        project, _, key = full.partition(":")
        if project != PROJECT:
            continue
        if key in SECRET_KEYS:
            present_secrets[key] = "<set>"  # only its presence matters here
        elif key in CONFIG_KEYS:
            raw[key] = entry.get("objectValue", entry.get("value"))
    raw["credentialSource"] = "random"  # the credentials being made are not needed to list them
    config = parse_stack_config(raw, stack=stack, secrets=present_secrets)
    return generated_keys(build_catalog(config))


class PulumiCli:
    def __init__(self, stack: str, cwd: Path, pulumi: str = "pulumi") -> None:
        self.stack = stack
        self.cwd = cwd
        self.pulumi = pulumi

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [self.pulumi, *args, "--stack", self.stack, "--non-interactive"],
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            env=os.environ,
            check=False,
        )
        if check and proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise CredentialsError(f"`pulumi {' '.join(args[:2])}` failed: {last[0]}")
        return proc.stdout if proc.returncode == 0 else ""

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run("config", "--json"))
        return data

    def stored(self) -> dict[str, str]:
        text = self.run("config", "get", KEY, check=False).strip()
        if not text:
            return {}
        value = json.loads(text)
        if not isinstance(value, dict):
            raise CredentialsError(f"{KEY} is not a JSON object; remove it to start over")
        return {str(k): str(v) for k, v in value.items()}

    def store(self, values: Mapping[str, str]) -> None:
        self.run("config", "set", "--secret", KEY, stdin=json.dumps(values, sort_keys=True))


def generate(cli: PulumiCli, rotate: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Returns (added, kept) key names; values are never printed."""
    needed = needed_keys(cli.config(), cli.stack)
    existing = cli.stored()
    values = fill(existing, needed, rotate)
    added = sorted(set(values) - set(existing) | set(rotate) & set(values))
    if added:
        cli.store(values)
    return added, sorted(set(existing) & set(values) - set(added))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.credentials", description=__doc__)
    parser.add_argument("--stack", required=True, help="the stack to generate credentials for")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project dir")
    parser.add_argument("--rotate", action="append", default=[], metavar="KEY")
    parser.add_argument("--pulumi", default="pulumi", help="the Pulumi CLI to run")
    args = parser.parse_args(argv)
    try:
        added, kept = generate(PulumiCli(args.stack, args.cwd, args.pulumi), args.rotate)
    except (CredentialsError, StackConfigError) as exc:
        print(f"credentials: {exc}", file=sys.stderr)
        return 1
    print(f"credentials: {len(added)} generated, {len(kept)} kept in {KEY} ({args.stack})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
