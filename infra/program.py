"""The bundle: credentials, the chosen platform, object-store identities and outputs.

`SeamlessBundle` is the one top-level component; every resource of the stack is its
descendant. It also records each resource it declares (`declared`), which the stack
exports as a count and tests use to wait for every registration.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pulumi

from infra.catalog import Catalog, build_catalog, coordinator, minio, questdb, redis
from infra.components.identity import Credentials, ObjectStoreIdentities
from infra.observability import build_assets
from infra.platforms import Platform, platform_factory
from infra.profile import ProfileError, check_service_configs
from infra.stack_config import StackConfig


def check_wiring(catalog: Catalog) -> None:
    """The SDK section's endpoints must name what this stack runs (or its managed
    override); otherwise clients would be handed a DSN nothing answers."""
    config = catalog.config
    ep = catalog.endpoints
    section = config.seamless

    def host_of(key: str) -> str | None:
        value = section.get(key)
        return urlsplit(str(value)).hostname if value else None

    expected = {
        "coordinator_url": coordinator.NAME if coordinator.NAME in catalog else None,
        "redis_dsn": ep.redis_host,
        "questdb_dsn": urlsplit(ep.questdb_dsn).hostname,
        "artifact_endpoint": urlsplit(ep.artifact_endpoint).hostname,
    }
    for key, want in expected.items():
        got = host_of(key)
        if got is not None and want is not None and got != want:
            raise ProfileError(
                f"seamless.{key} points at host {got!r}, but this stack serves it at {want!r}; "
                f"set seamless.{key} to the bundle's endpoint or configure the managed override"
            )
    bucket = section.get("artifact_bucket")
    if bucket and bucket != config.object_store.bucket:
        raise ProfileError(
            f"seamless.artifact_bucket is {bucket!r} but the bundle creates "
            f"{config.object_store.bucket!r}; make objectStore.bucket and it agree"
        )


def sdk_config(catalog: Catalog, credentials: Credentials) -> pulumi.Output[dict[str, Any]]:
    """The `seamless` section a client (the SDK) needs, with its own credentials (secret)."""
    section = dict(catalog.sdk_section)
    identity = coordinator.SDK_OBJECT_STORE.identity
    secret_parts = {
        "artifact_access_key": credentials.values[f"objectstore.{identity}.access_key"],
        "artifact_secret_key": credentials.values[f"objectstore.{identity}.secret_key"],
        "coordinator_token": credentials.values[coordinator.WORKER_TOKEN],
    }
    # The SDK reads QuestDB over the PostgreSQL wire, which needs the server's credentials
    # (found on the real engine: a DSN without them is refused).
    questdb_password = credentials.values.get(questdb.CREDENTIAL)
    if questdb_password is not None:
        secret_parts["questdb_password"] = questdb_password
    qdb_user = questdb.user(catalog.config)

    def assemble(s: dict[str, str]) -> dict[str, Any]:
        out = {**section, **s}
        password = out.pop("questdb_password", None)
        if password is not None:
            parts = urlsplit(str(out.get("questdb_dsn") or catalog.endpoints.questdb_dsn))
            netloc = f"{qdb_user}:{password}@{parts.hostname}:{parts.port or questdb.PG}"
            out["questdb_dsn"] = parts._replace(netloc=netloc).geturl()
        return {"seamless": out}

    return pulumi.Output.secret(pulumi.Output.all(**secret_parts).apply(assemble))


HOST_REWRITTEN_KEYS = ("coordinator_url", "redis_dsn", "questdb_dsn", "artifact_endpoint")


def host_sdk_config(
    catalog: Catalog, sdk: pulumi.Output[dict[str, Any]]
) -> pulumi.Output[dict[str, Any]]:
    """`sdk` with every in-network endpoint replaced by its port published on 127.0.0.1:
    what a client on the Docker host itself (a test, the load gate) dials."""
    published = {
        (svc.name, p.port): p.host_port
        for svc in catalog
        for p in svc.ports
        if p.host_port is not None
    }

    def rewrite(doc: dict[str, Any]) -> dict[str, Any]:
        section = dict(doc["seamless"])
        for key in HOST_REWRITTEN_KEYS:
            if not section.get(key):
                continue
            parts = urlsplit(str(section[key]))
            host_port = published.get((parts.hostname or "", parts.port or 0))
            if host_port is None:
                continue
            userinfo = parts.netloc.rpartition("@")[0]
            netloc = (f"{userinfo}@" if userinfo else "") + f"127.0.0.1:{host_port}"
            section[key] = parts._replace(netloc=netloc).geturl()
        return {"seamless": section}

    return pulumi.Output.secret(sdk.apply(rewrite))


class SeamlessBundle(pulumi.ComponentResource):
    catalog: Catalog
    credentials: Credentials
    platform: Platform
    object_store: ObjectStoreIdentities | None
    sdk_config: pulumi.Output[dict[str, Any]]
    endpoints: dict[str, str]
    declared: list[pulumi.Resource]

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        self.declared = []
        tracking = pulumi.ResourceOptions(transformations=[self._track])
        super().__init__(
            "seamless:bundle:SeamlessBundle",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, tracking),
        )
        child = pulumi.ResourceOptions(parent=self)
        self.catalog = build_catalog(config)
        check_wiring(self.catalog)
        check_service_configs(self.catalog)
        assets = build_assets(self.catalog)
        self.credentials = Credentials(f"{name}-credentials", self.catalog, opts=child)
        self.platform = platform_factory(config.platform)(
            f"{name}-{config.platform}", self.catalog, self.credentials, assets, opts=child
        )
        # A MinIO provisioned by its in-cluster Job (a catalog job) needs nothing here.
        store = config.object_store
        self.object_store = None
        if store.mode == "aws" or store.provisioner == "provider":
            self.object_store = ObjectStoreIdentities(
                f"{name}-objectstore",
                self.catalog,
                self.credentials,
                depends_on=(
                    self.platform.workloads(minio.NAME) if minio.NAME in self.catalog else []
                ),
                opts=child,
            )
        self.sdk_config = sdk_config(self.catalog, self.credentials)
        self.endpoints = service_endpoints(self.catalog)
        self.register_outputs({"endpoints": self.endpoints})

    def _track(self, args: pulumi.ResourceTransformationArgs) -> None:
        self.declared.append(args.resource)
        return None

    def settled(self) -> pulumi.Output[list[str]]:
        """Resolves once every declared resource is registered (for tests and counts)."""
        return pulumi.Output.all(*[r.urn for r in self.declared]).apply(lambda urns: list(urns))


def service_endpoints(catalog: Catalog) -> dict[str, str]:
    """In-network endpoints of every service, plus managed overrides."""
    out: dict[str, str] = {}
    for svc in catalog:
        out[svc.name] = f"{svc.scheme}://{svc.name}:{svc.ports[0].port}"
    ep = catalog.endpoints
    out.setdefault(redis.NAME, f"redis://{ep.redis_host}:{ep.redis_port}")
    out.setdefault(questdb.NAME, ep.questdb_dsn)
    out["controlbus_brokers"] = ",".join(ep.kafka_brokers)
    out["artifact_endpoint"] = ep.artifact_endpoint
    out["artifact_bucket"] = ep.bucket
    return out


def deploy(config: StackConfig) -> SeamlessBundle:
    bundle = SeamlessBundle("seamless", config)
    pulumi.export("endpoints", bundle.endpoints)
    pulumi.export("sdkConfig", bundle.sdk_config)
    if config.platform == "docker" and config.expose_host_ports:
        pulumi.export("hostSdkConfig", host_sdk_config(bundle.catalog, bundle.sdk_config))
    operator_token = bundle.credentials.values.get(coordinator.OPERATOR_TOKEN)
    if operator_token is not None:
        # The coordinator's `ops` client (operator role: `seamless lease recover --force`);
        # a secret output, read with `--show-secrets`.
        pulumi.export("coordinatorOperatorToken", pulumi.Output.secret(operator_token))
    pulumi.export("services", list(bundle.catalog.names))
    pulumi.export("resourceCount", bundle.settled().apply(len))
    return bundle
