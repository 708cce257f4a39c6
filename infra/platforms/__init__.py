"""Platforms render the catalog onto a target; the stack's `platform` key picks one here.

A platform is a `pulumi.ComponentResource` built as `Factory(name, catalog, credentials,
assets, opts=...)` that can name the resources running a service. A third platform is one
module plus one line in `REGISTRY` (imported only when a stack selects it).
"""

from __future__ import annotations

import importlib
from typing import Protocol

import pulumi

from infra.catalog import Catalog
from infra.components.identity import Credentials
from infra.observability import ObservabilityAssets


class Platform(Protocol):
    def workloads(self, service: str) -> list[pulumi.Resource]:
        """The resources that run `service` (what must be up before something dials it)."""
        ...


class PlatformFactory(Protocol):
    def __call__(
        self,
        name: str,
        catalog: Catalog,
        credentials: Credentials,
        assets: ObservabilityAssets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> Platform: ...


REGISTRY: dict[str, str] = {
    "docker": "infra.platforms.docker:DockerPlatform",
    "kubernetes": "infra.platforms.kubernetes:KubernetesPlatform",
}


def platform_factory(name: str) -> PlatformFactory:
    if name not in REGISTRY:
        raise KeyError(f"no platform {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module, _, attr = REGISTRY[name].partition(":")
    factory: PlatformFactory = getattr(importlib.import_module(module), attr)
    return factory
