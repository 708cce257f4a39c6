"""The Pulumi program under Pulumi's mock engine, for stacks dev, prod and prod with
managed overrides: the full resource list, wiring edges, host ports, probe routes,
isolation grants, secrets, and prod's refusal to preview without a coordinator."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pytest
import yaml
from seamless.coordinator.settings import load_settings

from infra import catalog as cat
from infra.profile import check_profile
from infra.stack_config import parse_stack_config
from tests.infra.harness import (
    MANAGED_SECRETS,
    ProgramRun,
    Recorded,
    prod_managed_config,
    run_program,
    stack_file_config,
)

pytestmark = pytest.mark.infra

CONTAINER = "docker:index/container:Container"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SECRET = "kubernetes:core/v1:Secret"
SERVICE = "kubernetes:core/v1:Service"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"

EXPECTED_DEV_TYPES = {
    # 8 services + Prometheus, + 8 files containers (carry the uploads; never started),
    # + the ControlBus's ACL job (run to completion)
    "docker:index/container:Container": 18,
    "docker:index/image:Image": 1,
    "docker:index/network:Network": 1,
    # 4 data volumes + 9 files volumes (uploads into read-only containers land in volumes)
    "docker:index/volume:Volume": 12,
    "minio:index/iamPolicy:IamPolicy": 4,
    "minio:index/iamUser:IamUser": 4,
    "minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment": 4,
    "minio:index/s3Bucket:S3Bucket": 1,
    "pulumi:providers:minio": 1,
    "random:index/randomPassword:RandomPassword": 17,  # coordinator.operator_token included
    "seamless:bundle:SeamlessBundle": 1,
    "seamless:docker:Platform": 1,
    "seamless:docker:Service": 8,
    "seamless:identity:Credentials": 1,
    "seamless:identity:ObjectStoreIdentities": 1,
}
# prod as shipped (the GitOps way): the kubernetes provider alone.
EXPECTED_PROD_TYPES = {
    "kubernetes:apps/v1:Deployment": 4,
    "kubernetes:apps/v1:StatefulSet": 6,
    "kubernetes:batch/v1:Job": 2,  # ControlBus ACLs, MinIO bucket/users/policies
    "kubernetes:core/v1:ConfigMap": 7,
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:Secret": 12,
    "kubernetes:core/v1:Service": 16,
    "kubernetes:core/v1:ServiceAccount": 10,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": 13,
    "kubernetes:policy/v1:PodDisruptionBudget": 4,
    "seamless:bundle:SeamlessBundle": 1,
    "seamless:identity:Credentials": 1,
    "seamless:kubernetes:Platform": 1,
    "seamless:kubernetes:ServiceDeployment": 10,
    "seamless:kubernetes:ServiceJob": 2,
}
# prod with the provider-based paths: image built and pushed, random passwords, MinIO
# identities through the minio provider.
EXPECTED_PROD_PROVIDER_TYPES = {
    **EXPECTED_PROD_TYPES,
    "docker:index/image:Image": 1,
    "kubernetes:batch/v1:Job": 1,
    "kubernetes:core/v1:ConfigMap": 6,
    "kubernetes:core/v1:Secret": 11,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": 12,
    "minio:index/iamPolicy:IamPolicy": 4,
    "minio:index/iamUser:IamUser": 4,
    "minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment": 4,
    "minio:index/s3Bucket:S3Bucket": 1,
    "pulumi:providers:minio": 1,
    "random:index/randomPassword:RandomPassword": 21,  # coordinator.operator_token included
    "seamless:identity:ObjectStoreIdentities": 1,
    "seamless:kubernetes:ServiceJob": 1,
}


def prod_provider_config() -> dict[str, Any]:
    config = stack_file_config("prod")
    config.update(
        {
            "coordinatorImage": "ghcr.io/seamless-stack/seamless-coordinator:0.1.0",
            "pushCoordinatorImage": True,
            "credentialSource": "random",
            "minioAdminEndpoint": "minio.seamless.svc.cluster.local:9000",
            "objectStore": {**config["objectStore"], "provisioner": "provider"},
        }
    )
    return config


def _checked(run: ProgramRun, check: Any) -> pulumi.Output[Any]:
    """Run `check` once every resource the bundle declared has been registered."""
    return run.bundle.settled().apply(lambda _: check())


def _by_name(run: ProgramRun, typ: str) -> dict[str, Recorded]:
    out = {}
    for r in run.mocks.of_type(typ):
        name = (r.inputs.get("metadata") or {}).get("name") or r.inputs.get("name")
        out[str(name)] = r
    return out


def _external_egress(run: ProgramRun, service: str) -> set[int]:
    """The ports `service`'s NetworkPolicy opens beyond the cluster (managed dependencies)."""
    netpol = _by_name(run, NETPOL)[f"{service}-allow"].inputs["spec"]
    return {
        p["port"] for rule in netpol["egress"] if "ipBlock" in rule["to"][0] for p in rule["ports"]
    }


def _host(dsn: str) -> str:
    return urlsplit(dsn).hostname or dsn.split(":")[0]


# --- dev (Docker) --------------------------------------------------------------------------


@pulumi.runtime.test
def test_dev_stack_declares_the_docker_bundle() -> pulumi.Output[Any]:
    run = run_program("dev", stack_file_config("dev"))

    def check() -> None:
        assert run.mocks.types() == EXPECTED_DEV_TYPES
        declared = _by_name(run, CONTAINER)
        jobs = {n: c for n, c in declared.items() if c.inputs.get("attach")}
        containers = {
            n: c
            for n, c in declared.items()
            if c.inputs.get("start") is not False and n not in jobs
        }
        # the ControlBus's users and ACLs: a container run to completion after the bus
        assert set(jobs) == {"controlbus-acl-bootstrap"}
        job = jobs["controlbus-acl-bootstrap"].inputs
        assert job["mustRun"] is False and job["restart"] == "no" and job["memory"] > 0
        assert job["user"] == "1000:1000" and job["capabilities"] == {"drops": ["ALL"]}
        assert set(containers) == {
            "gateway", "dagmanager", "worldservice", "seamless-coordinator", "controlbus",
            "redis", "questdb", "minio", "prometheus",
        }  # fmt: skip
        # dev runs the QMTL services in memory: no Postgres or Neo4j
        assert "postgres" not in containers and "neo4j" not in containers
        network = run.mocks.of_type("docker:index/network:Network")[0].inputs["name"]
        for name, c in containers.items():
            assert c.inputs["memory"] > 0 and float(c.inputs["cpus"]) > 0, name
            assert c.inputs["healthcheck"]["tests"], name
            assert [n["name"] for n in c.inputs["networksAdvanced"]] == [network], name
        # the coordinator image is built from sdk/Dockerfile
        image = run.mocks.of_type("docker:index/image:Image")[0].inputs
        assert image["build"]["context"] == "sdk"
        assert image["build"]["dockerfile"] == "sdk/Dockerfile"

    return _checked(run, check)


@pulumi.runtime.test
def test_dev_no_host_port_is_published_twice() -> pulumi.Output[Any]:
    run = run_program("dev", stack_file_config("dev"))

    def check() -> None:
        published: dict[int, str] = {}
        for c in run.mocks.of_type(CONTAINER):
            for port in c.inputs.get("ports") or []:
                external = port["external"]
                assert external not in published, (
                    f"host port {external}: {published.get(external)} and {c.inputs['name']}"
                )
                published[external] = c.inputs["name"]
                assert port["ip"] == "127.0.0.1"
        # QMTL's collision: MinIO API/console and QuestDB HTTP all on 9000
        assert published[9000] == "questdb"
        assert published[9010] == "minio" and published[9011] == "minio"

    return _checked(run, check)


@pulumi.runtime.test
def test_dev_secrets_travel_as_files_never_env() -> pulumi.Output[Any]:
    run = run_program("dev", stack_file_config("dev"))

    def check() -> None:
        passwords = {
            r.name: None for r in run.mocks.of_type("random:index/randomPassword:RandomPassword")
        }
        assert passwords
        for c in run.mocks.of_type(CONTAINER):
            env = " ".join(c.inputs.get("envs") or [])
            assert "pw" not in env or "@" not in env, c.inputs["name"]
            for entry in c.inputs.get("envs") or []:
                name, _, value = entry.partition("=")
                assert not ("PASSWORD" in name and not name.endswith("_FILE")), entry
                assert "://" not in value or "@" not in value, entry
        # the coordinator's files container carries its uploads (see platforms/docker.py)
        coordinator = _by_name(run, CONTAINER)["seamless-coordinator-files"]
        files = {u["file"]: u["content"] for u in coordinator.inputs["uploads"]}
        settings = yaml.safe_load(files["/run/secrets/seamless/coordinator.yml"])
        assert settings["REDIS_DSN"].startswith("redis://seamless-coordinator:")
        assert _host(settings["REDIS_DSN"]) == "redis"
        assert settings["REDIS_DSN"].endswith(":6379/3")
        assert _host(settings["QUESTDB_DSN"]) == "questdb"
        _assert_coordinator_tokens(files["/run/secrets/seamless/tokens.yml"])

    return _checked(run, check)


def _assert_coordinator_tokens(text: str) -> None:
    """The bundle's tokens file, as the coordinator itself reads it: the SDK's client is a
    worker, `ops` an operator only, each with its own generated token."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokens.yml"
        path.write_text(text)
        env = {"REDIS_DSN": "redis://r:6379/3", "COORDINATOR_TOKENS_FILE": str(path)}
        settings = load_settings(env)
    assert sorted(settings.tokens) == ["ops", "seamless-sdk"]
    assert settings.roles_of("seamless-sdk") == {"worker"}
    assert settings.roles_of("ops") == {"operator"}
    tokens = {client: secret.get_secret_value() for client, secret in settings.tokens.items()}
    assert tokens["ops"] != tokens["seamless-sdk"]


@pulumi.runtime.test
def test_dev_without_coordinator_warns_and_deploys_none() -> pulumi.Output[Any]:
    config = stack_file_config("dev")
    config["seamless"] = {k: v for k, v in config["seamless"].items() if k != "coordinator_url"}
    report = check_profile(parse_stack_config(config, stack="dev"))
    assert any(w.startswith("seamless.coordinator_url") for w in report.warnings)
    run = run_program("dev", config)

    def check() -> None:
        names = set(_by_name(run, CONTAINER))
        assert "seamless-coordinator" not in names
        assert not run.mocks.of_type("docker:index/image:Image")
        assert {"gateway", "redis", "questdb", "minio"} <= names

    return _checked(run, check)


@pulumi.runtime.test
def test_dev_with_build_coordinator_image_false_builds_nothing() -> pulumi.Output[Any]:
    # Through the program's own config reading: the engine hands it the text "false",
    # which used to be read as a truthy string (the image was built all the same).
    config = {**stack_file_config("dev"), "buildCoordinatorImage": False}
    config["coordinatorImage"] = "registry.example.com/seamless-coordinator:0.1.0"
    run = run_program("dev", config)

    def check() -> None:
        assert not run.mocks.of_type("docker:index/image:Image")
        coordinator = _by_name(run, CONTAINER)["seamless-coordinator"].inputs
        assert coordinator["image"] == "registry.example.com/seamless-coordinator:0.1.0"

    return _checked(run, check)


# --- prod (Kubernetes) ---------------------------------------------------------------------


@pulumi.runtime.test
def test_prod_stack_declares_the_kubernetes_bundle() -> pulumi.Output[Any]:
    run = run_program("prod", stack_file_config("prod"))

    def check() -> None:
        assert run.mocks.types() == EXPECTED_PROD_TYPES
        workloads = {**_by_name(run, DEPLOYMENT), **_by_name(run, STATEFULSET)}
        assert set(workloads) == set(cat.ALL_SERVICES)
        assert workloads["controlbus"].inputs["spec"]["replicas"] == 3
        services = _by_name(run, SERVICE)
        assert set(cat.ALL_SERVICES) <= set(services)
        # a PDB exactly for each multi-replica workload
        multi = {n for n, w in workloads.items() if w.inputs["spec"]["replicas"] > 1}
        assert set(_by_name(run, PDB)) == multi
        assert multi == {"gateway", "worldservice", "seamless-coordinator", "controlbus"}
        for name, w in workloads.items():
            pod = w.inputs["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False
            for c in pod["containers"]:
                assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
                assert c["securityContext"]["runAsNonRoot"] is True
                assert c["securityContext"]["allowPrivilegeEscalation"] is False
                assert not c["image"].endswith(":latest"), name
                assert ":" in c["image"].rsplit("/", 1)[-1] or "@sha256:" in c["image"]
        stateful = {n for n in _by_name(run, STATEFULSET)}
        assert stateful == {"controlbus", "redis", "postgres", "neo4j", "questdb", "minio"}
        for n in stateful:
            claims = _by_name(run, STATEFULSET)[n].inputs["spec"]["volumeClaimTemplates"]
            assert claims and all(c["spec"]["resources"]["requests"]["storage"] for c in claims)

    return _checked(run, check)


@pulumi.runtime.test
def test_prod_declares_no_resource_beyond_the_kubernetes_provider() -> pulumi.Output[Any]:
    run = run_program("prod", stack_file_config("prod"))

    def check() -> None:
        providers = {r.typ.split(":")[0] for r in run.mocks.resources} - {"seamless"}
        assert providers == {"kubernetes"}
        workloads = {**_by_name(run, DEPLOYMENT), **_by_name(run, STATEFULSET)}
        image = workloads["seamless-coordinator"].inputs["spec"]["template"]["spec"]
        assert "@sha256:" in image["containers"][0]["image"]
        # the stack's own secret supplies every password, marked secret on the way
        assert run.bundle.credentials.passwords == {}

    return _checked(run, check)


@pulumi.runtime.test
def test_prod_provider_paths_build_the_image_and_use_the_minio_provider() -> pulumi.Output[Any]:
    run = run_program("prod", prod_provider_config())

    def check() -> None:
        assert run.mocks.types() == EXPECTED_PROD_PROVIDER_TYPES
        image = run.mocks.of_type("docker:index/image:Image")[0].inputs
        assert image["build"]["context"] == "sdk" and image["skipPush"] is False
        provider = run.mocks.of_type("pulumi:providers:minio")[0].inputs
        assert provider["minioServer"] == "minio.seamless.svc.cluster.local:9000"
        workloads = {**_by_name(run, DEPLOYMENT), **_by_name(run, STATEFULSET)}
        spec = workloads["seamless-coordinator"].inputs["spec"]["template"]["spec"]
        assert spec["containers"][0]["image"].endswith(f"@sha256:{'ab' * 32}")

    return _checked(run, check)


@pulumi.runtime.test
def test_prod_probes_hit_only_real_routes() -> pulumi.Output[Any]:
    run = run_program("prod", stack_file_config("prod"))

    def check() -> None:
        workloads = {**_by_name(run, DEPLOYMENT), **_by_name(run, STATEFULSET)}
        for name, w in workloads.items():
            c = w.inputs["spec"]["template"]["spec"]["containers"][0]
            for kind in ("readinessProbe", "livenessProbe"):
                probe = c[kind]
                if "httpGet" in probe:
                    route = (name, probe["httpGet"]["port"], probe["httpGet"]["path"])
                    assert route in cat.REAL_HTTP_ROUTES, f"{name} {kind} probes {route}"
                else:
                    port = probe["tcpSocket"]["port"]
                    assert port in {p["containerPort"] for p in c["ports"]}, (name, port)
        # the gateway and dagmanager serve /status, not QMTL compose's /healthz
        gw = workloads["gateway"].inputs["spec"]["template"]["spec"]["containers"][0]
        assert gw["readinessProbe"]["httpGet"]["path"] == "/status"

    return _checked(run, check)


@pulumi.runtime.test
def test_prod_wiring_every_dsn_points_at_a_declared_service() -> pulumi.Output[Any]:
    run = run_program("prod", stack_file_config("prod"))

    def check() -> None:
        services = set(_by_name(run, SERVICE))
        secrets = _by_name(run, SECRET)
        # QMTL services: /etc/qmtl/config.yml from their Secret, every DSN filled
        for name in ("gateway", "dagmanager", "worldservice"):
            doc = yaml.safe_load(secrets[f"{name}-secrets"].inputs["stringData"]["config.yml"])
            assert doc["profile"] == "prod"
            assert doc["seamless"]["coordinator_url"] == "http://seamless-coordinator:8080"
            for broker in doc["controlbus"]["brokers"]:
                assert _host(broker) in services
            assert doc["controlbus"]["topic_prefix"] == "qmtl.controlbus."
        gw = yaml.safe_load(secrets["gateway-secrets"].inputs["stringData"]["config.yml"])[
            "gateway"
        ]
        assert _host(gw["redis_dsn"]) in services and gw["redis_dsn"].endswith("/0")
        assert urlsplit(gw["redis_dsn"]).username == "gateway"
        assert _host(gw["database_dsn"]) == "postgres" and gw["database_backend"] == "postgres"
        assert all(t.startswith("qmtl.controlbus.") for t in gw["controlbus_topics"])
        dm = yaml.safe_load(secrets["dagmanager-secrets"].inputs["stringData"]["config.yml"])[
            "dagmanager"
        ]
        assert _host(dm["neo4j_dsn"]) == "neo4j" and dm["neo4j_password"]
        assert dm["http_port"] == 8101 and dm["grpc_port"] == 50051
        ws = yaml.safe_load(secrets["worldservice-secrets"].inputs["stringData"]["config.yml"])[
            "worldservice"
        ]
        assert _host(ws["dsn"]) == "postgres" and _host(ws["redis"]) == "redis"
        coord_secret = secrets["seamless-coordinator-secrets"].inputs["stringData"]
        coord = yaml.safe_load(coord_secret["coordinator.yml"])
        _assert_coordinator_tokens(coord_secret["tokens.yml"])
        for key in ("REDIS_DSN", "QUESTDB_DSN"):
            assert _host(coord[key]) in services, key
        # the SDK config the stack hands out names services that exist
        deployment = _by_name(run, DEPLOYMENT)["seamless-coordinator"].inputs
        env = {
            e["name"]: e.get("value")
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert _host(env["ARTIFACT_ENDPOINT"]) in services
        assert env["ARTIFACT_BUCKET"] == "qmtl-seamless"
        assert env["COORDINATOR_KEY_PREFIX"] == "seamless:"
        assert env["COORDINATOR_LEDGER_PREFIX"] == "seamless_"
        assert env["PROMETHEUS_PORT"] == "9102" and env["BIND_ADDR"] == "0.0.0.0:8080"

    return _checked(run, check)


@pulumi.runtime.test
def test_prod_network_policies_follow_the_dependency_edges() -> pulumi.Output[Any]:
    run = run_program("prod", stack_file_config("prod"))

    def check() -> None:
        policies = _by_name(run, NETPOL)
        deny = policies["default-deny-all"].inputs["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        catalog = run.bundle.catalog

        def ingress_from(name: str) -> set[str]:
            spec = policies[f"{name}-allow"].inputs["spec"]
            return {
                peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                for rule in spec["ingress"]
                for peer in rule["from"]
                if "podSelector" in peer
            }

        assert ingress_from("redis") == {
            "gateway", "dagmanager", "worldservice", "seamless-coordinator"
        }  # fmt: skip
        assert ingress_from("questdb") == {"seamless-coordinator"}
        assert ingress_from("minio") == {"seamless-coordinator", "minio-bootstrap"}
        assert ingress_from("neo4j") == {"dagmanager"}
        assert ingress_from("postgres") == {"gateway", "worldservice"}
        for svc in catalog:
            assert ingress_from(svc.name) >= set(catalog.clients_of(svc.name))

    return _checked(run, check)


@pulumi.runtime.test
def test_prod_isolation_grants_per_service() -> pulumi.Output[Any]:
    run = run_program("prod", stack_file_config("prod"))

    def check() -> None:
        acl = _by_name(run, SECRET)["redis-secrets"].inputs["stringData"]["users.acl"]
        lines = {line.split()[1]: line for line in acl.strip().splitlines()}
        assert "~seamless:*" in lines["seamless-coordinator"]
        assert "~gateway:*" in lines["gateway"] and "~dagmanager:*" in lines["dagmanager"]
        assert "nopass" in lines["default"] and "~" not in lines["default"]
        for line in acl.splitlines():
            assert "pw" not in line.split("#")[0] or line.startswith("user default")
        configmaps = _by_name(run, "kubernetes:core/v1:ConfigMap")
        bootstrap = configmaps["minio-bootstrap-config"].inputs["data"]
        policies = {k.removesuffix(".json"): v for k, v in bootstrap.items() if k.endswith(".json")}
        assert set(policies) == {g.identity for g in cat.OBJECT_STORE_GRANTS}
        assert "qmtl-seamless/artifacts/*" in policies["seamless-coordinator"]
        assert "artifacts/" not in policies["gateway"]
        for g in cat.OBJECT_STORE_GRANTS:
            assert (
                f"policy attach bundle {g.identity}-own-prefix --user {g.identity}"
                in (bootstrap["bootstrap.sh"])
            )
        script = configmaps["controlbus-acl-bootstrap-config"].inputs["data"]
        assert (
            "--topic qmtl.controlbus. --resource-pattern-type prefixed"
            in script["acl-bootstrap.sh"]
        )
        # resource limits on every container of every workload, the ACL job included
        for typ in (DEPLOYMENT, STATEFULSET, "kubernetes:batch/v1:Job"):
            for w in run.mocks.of_type(typ):
                for c in w.inputs["spec"]["template"]["spec"]["containers"]:
                    assert c["resources"]["limits"], w.name

    return _checked(run, check)


@pulumi.runtime.test
def test_prod_secrets_are_marked_secret() -> pulumi.Output[Any]:
    run = run_program("prod", stack_file_config("prod"))
    bundle = run.bundle
    checks = [
        run.outputs["sdkConfig"].is_secret(),
        run.outputs["coordinatorOperatorToken"].is_secret(),
        *(value.is_secret() for value in bundle.credentials.values.values()),
    ]

    async def all_secret() -> list[bool]:
        await run.bundle.settled().future()
        return [await c for c in checks]

    def check(flags: list[bool]) -> None:
        assert flags and all(flags), flags
        # what the engine received: every Secret value and every password marked secret
        for secret in run.mocks.of_type(SECRET):
            for key in secret.inputs["stringData"]:
                assert any(
                    p.startswith(f"stringData.{key}") or p == "stringData"
                    for p in secret.secret_paths
                ), (secret.name, key)
        for provider in run.mocks.of_type("pulumi:providers:minio"):
            assert {"minioUser", "minioPassword"} <= set(provider.secret_paths)
        for user in run.mocks.of_type("minio:index/iamUser:IamUser"):
            assert "secret" in user.secret_paths

    return pulumi.Output.from_input(all_secret()).apply(check)


@pulumi.runtime.test
def test_prod_without_coordinator_refuses_with_the_sdk_message() -> pulumi.Output[str]:
    config = stack_file_config("prod")
    config["seamless"] = {k: v for k, v in config["seamless"].items() if k != "coordinator_url"}
    with pytest.raises(pulumi.RunError) as info:
        run_program("prod", config)
    message = str(info.value)
    assert "Prod profile requires seamless.coordinator_url" in message
    return pulumi.Output.from_input(message).apply(lambda m: m)


@pulumi.runtime.test
def test_prod_refuses_latest_images() -> pulumi.Output[str]:
    config = stack_file_config("prod")
    config["images"] = {**config["images"], "redis": "redis:latest"}
    with pytest.raises(pulumi.RunError) as info:
        run_program("prod", config)
    assert "images.redis" in str(info.value) and "latest" in str(info.value)
    return pulumi.Output.from_input(str(info.value))


# --- prod with managed overrides -----------------------------------------------------------


@pulumi.runtime.test
def test_prod_managed_overrides_strip_questdb_and_minio() -> pulumi.Output[Any]:
    run = run_program("prod", prod_managed_config(), MANAGED_SECRETS)

    def check() -> None:
        workloads = {**_by_name(run, DEPLOYMENT), **_by_name(run, STATEFULSET)}
        assert "questdb" not in workloads and "minio" not in workloads
        assert not [r for r in run.mocks.resources if r.typ.startswith("minio:")]
        # the managed QuestDB DSN is wired into the coordinator, with the secret password
        coord = yaml.safe_load(
            _by_name(run, SECRET)["seamless-coordinator-secrets"].inputs["stringData"][
                "coordinator.yml"
            ]
        )
        qdb = urlsplit(coord["QUESTDB_DSN"])
        assert qdb.hostname == "qdb.managed.example" and qdb.username == "seamless"
        assert qdb.password == MANAGED_SECRETS["questdbPassword"]
        # an S3 bucket: versioned, encrypted, public access blocked
        assert len(run.mocks.of_type("aws:s3/bucket:Bucket")) == 1
        versioning = run.mocks.of_type("aws:s3/bucketVersioning:BucketVersioning")[0].inputs
        assert versioning["versioningConfiguration"]["status"] == "Enabled"
        sse = run.mocks.of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )[0].inputs
        assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        block = run.mocks.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0]
        assert all(
            block.inputs[k]
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
        # one IAM identity per service, each policy scoped to its own prefix
        users = {r.inputs["name"] for r in run.mocks.of_type("aws:iam/user:User")}
        assert users == {f"prod-{g.identity}" for g in cat.OBJECT_STORE_GRANTS}
        assert len(run.mocks.of_type("aws:iam/accessKey:AccessKey")) == len(users)
        policies = [r.inputs["policy"] for r in run.mocks.of_type("aws:iam/userPolicy:UserPolicy")]
        assert sorted(p.count("/artifacts/*") for p in policies) == [0, 0, 1, 1]
        # egress to the managed endpoints is opened for the coordinator only
        assert _external_egress(run, "seamless-coordinator") == {443, 8812}

    return _checked(run, check)


def test_managed_questdb_without_secret_password_is_refused() -> None:
    from infra.stack_config import StackConfigError

    with pytest.raises(StackConfigError, match="questdbPassword"):
        parse_stack_config(prod_managed_config(), stack="prod", secrets={})


@pulumi.runtime.test
def test_prod_external_kafka_and_redis_drop_their_services() -> pulumi.Output[Any]:
    config = stack_file_config("prod")
    config["controlbus"] = {"external": True, "brokers": ["kafka-1.example:9093"]}
    config["redis"] = {"external": True, "url": "redis.managed.example:6380"}
    config["seamless"] = {**config["seamless"], "redis_dsn": "redis://redis.managed.example:6380/3"}
    run = run_program("prod", config, {"redisAdminPassword": "managed-redis-admin-0123"})

    def check() -> None:
        workloads = {**_by_name(run, DEPLOYMENT), **_by_name(run, STATEFULSET)}
        assert "controlbus" not in workloads and "redis" not in workloads
        jobs = {j.inputs["metadata"]["name"] for j in run.mocks.of_type("kubernetes:batch/v1:Job")}
        assert jobs == {"minio-bootstrap"}  # no ControlBus, no ACL job
        doc = yaml.safe_load(
            _by_name(run, SECRET)["gateway-secrets"].inputs["stringData"]["config.yml"]
        )
        assert doc["gateway"]["controlbus_brokers"] == ["kafka-1.example:9093"]
        assert _host(doc["gateway"]["redis_dsn"]) == "redis.managed.example"
        assert _external_egress(run, "gateway") == {6380, 9093}

    return _checked(run, check)
