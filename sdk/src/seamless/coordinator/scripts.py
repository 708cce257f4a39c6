"""The Lua scripts that make every lease state change atomic, loaded from package data.

Each script is the shared prelude (`_common.lua`) followed by its own body, registered with
redis-py so calls go out as EVALSHA and fall back to EVAL after a Redis restart flushed the
script cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript

SCRIPT_NAMES = ("claim", "renew", "complete", "fail", "recover", "sweep", "ratelimit")


def script_source(name: str) -> str:
    """The full text of script `name`: prelude + body."""
    package = resources.files("seamless.coordinator")
    prelude = package.joinpath("_common.lua").read_text(encoding="utf-8")
    body = package.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return f"{prelude}\n{body}"


@dataclass(frozen=True)
class LeaseScripts:
    claim: AsyncScript
    renew: AsyncScript
    complete: AsyncScript
    fail: AsyncScript
    recover: AsyncScript
    sweep: AsyncScript
    ratelimit: AsyncScript

    def all(self) -> list[AsyncScript]:
        return [getattr(self, name) for name in SCRIPT_NAMES]

    @classmethod
    def register(cls, redis: Redis | RedisCluster) -> LeaseScripts:
        return cls(**{name: redis.register_script(script_source(name)) for name in SCRIPT_NAMES})
