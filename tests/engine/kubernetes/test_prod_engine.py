"""The prod stack under the real Pulumi engine and a real Kubernetes API server.

The CLI (`.tools/bin/pulumi`, built from source), its kubernetes provider as the only plugin
in a fresh PULUMI_HOME (ambient plugins ignored), a `file://` backend, the program inline
through the Automation API (tests/engine/kubernetes/driver.py), and the stack configured as
the README says: `Pulumi.prod.yaml` as shipped plus `python -m infra.credentials`.

1. Render-to-YAML: preview, up, then `preview --expect-no-changes`; every rendered object
   validates against the official schemas.
2. The rendered objects applied server-side to lab/kube.py's kube-apiserver, the namespace
   enforcing (and warning on) Pod Security `restricted`: no object refused, no warning.
3. preview, up (readiness awaited: the controller-manager, the scheduler and kwok's nodes
   make Deployments and StatefulSets ready and Jobs finish), a clean
   `preview --expect-no-changes`, and a destroy that leaves nothing, all against the live
   API server.
4. Managed overrides (external QuestDB, Redis and Kafka) rendered the same way. The S3 mode
   is left out: it needs the pulumi-aws provider, which the Go module proxy refuses to
   serve (docs/deploy.md); the mock tests cover it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lab.kube import KubeCluster, KubeError

# Each test drives whole engine runs (an `up` awaits every workload): pytest-timeout's 300 s
# default is too short for that on a loaded machine.
pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[3]
BIN = ROOT / ".tools" / "bin"
TOOLS = (
    "pulumi",
    "pulumi-resource-kubernetes",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)
NAMESPACE = "seamless"
RENDERED_OBJECTS = 75  # as tests/infra/platforms/test_kubernetes.py counts them under mocks
K8S_SCHEMA_VERSION = "1.34.0"
STEP_TIMEOUT_S = 1800  # one driver call: its engine steps carry their own await timeouts


def _versions() -> dict[str, str]:
    out = {}
    for line in (ROOT / "scripts" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def engine_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    missing = [t for t in TOOLS if not (BIN / t).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing from .tools/bin: run `make bootstrap`")
    home = tmp_path_factory.mktemp("pulumi-home")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(home),
        "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
    }
    version = _versions()["PULUMI_KUBERNETES_VERSION"]
    proc = subprocess.run(
        [str(BIN / "pulumi"), "plugin", "install", "resource", "kubernetes", version,
         "--file", str(BIN / "pulumi-resource-kubernetes")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return env


@dataclass
class Project:
    work_dir: Path
    backend: str
    env: dict[str, str]

    def pulumi(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [str(BIN / "pulumi"), *args, "--non-interactive"],
            cwd=self.work_dir, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, f"pulumi {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def credentials(self) -> str:
        """The project command the README gives, run as a user runs it."""
        proc = subprocess.run(
            [sys.executable, "-m", "infra.credentials", "--stack", "prod",
             "--cwd", str(self.work_dir)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def drive(self, label: str, steps: list[str], config: dict[str, str]) -> list[dict[str, Any]]:
        spec = {
            "work_dir": str(self.work_dir),
            "backend": self.backend,
            "stack": "prod",
            "label": label,
            "config": config,
            "steps": steps,
        }
        proc = subprocess.run(
            [sys.executable, "-m", "tests.engine.kubernetes.driver", json.dumps(spec)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
        )  # fmt: skip
        lines = proc.stdout.strip().splitlines()
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": proc.stderr[-4000:]}
        if "error" in result:
            log = self.work_dir / f"engine-{label}.log"
            tail = log.read_text()[-3000:] if log.exists() else "(no log)"
            pytest.fail(f"engine {label} failed:\n{result['error']}\n--- log tail ---\n{tail}")
        steps_out: list[dict[str, Any]] = result["steps"]
        return steps_out


def new_project(
    root: Path, env: dict[str, str], overrides: dict[str, Any] | None = None
) -> Project:
    work_dir = root / "project"
    state = root / "state"
    work_dir.mkdir(parents=True)
    state.mkdir()
    backend = f"file://{state}"
    (work_dir / "Pulumi.yaml").write_text(
        yaml.safe_dump({"name": "seamless-stack", "runtime": "python", "backend": {"url": backend}})
    )
    stack_file = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    for key, value in (overrides or {}).items():
        stack_file["config"][f"seamless-stack:{key}"] = value
    (work_dir / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack_file, sort_keys=False))
    project = Project(work_dir=work_dir, backend=backend, env=env)
    project.pulumi("stack", "init", "prod")
    return project


def rendered_objects(directory: Path) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in sorted(directory.rglob("*.yaml")):
        objects.extend(o for o in yaml.safe_load_all(path.read_text()) if o)
    return objects


def _secret_value(secret: dict[str, Any], key: str) -> str:
    if key in secret.get("stringData", {}):
        return str(secret["stringData"][key])
    return base64.b64decode(secret["data"][key]).decode()


def _changes(step: dict[str, Any]) -> dict[str, int]:
    changes: dict[str, int] = step["changes"]
    return changes


def _assert_no_changes(step: dict[str, Any]) -> None:
    changes = _changes(step)
    assert set(changes) <= {"same"} and changes.get("same", 0) > 0, changes


@dataclass
class Rendered:
    project: Project
    directory: Path
    steps: list[dict[str, Any]]


@pytest.fixture(scope="module")
def rendered(
    engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rendered]:
    root = tmp_path_factory.mktemp("render")
    project = new_project(root, engine_env)
    project.credentials()
    directory = root / "manifests"
    steps = project.drive(
        "render",
        ["preview", "up", "preview-no-changes"],
        {"kubernetes:renderYamlToDirectory": str(directory)},
    )
    yield Rendered(project, directory, steps)
    # Rendered Secrets are plain YAML on disk (the provider writes stringData as given).
    shutil.rmtree(directory, ignore_errors=True)


def test_render_preview_up_and_no_changes(rendered: Rendered, engine_env: dict[str, str]) -> None:
    preview, up, again = rendered.steps
    assert preview["changes"].get("create", 0) > RENDERED_OBJECTS
    assert up["result"] == "succeeded"
    assert up["changes"].get("create") == preview["changes"]["create"]
    assert up["outputs"]["services"] and up["outputs"]["resourceCount"] > RENDERED_OBJECTS
    _assert_no_changes(again)
    # The kubernetes provider is the only plugin the engine ever needed.
    plugins = Path(engine_env["PULUMI_HOME"]) / "plugins"
    names = {p.name for p in plugins.iterdir() if p.is_dir()}
    assert names == {f"resource-kubernetes-v{_versions()['PULUMI_KUBERNETES_VERSION']}"}, names


def test_rendered_objects_validate_against_the_schemas(rendered: Rendered) -> None:
    objects = rendered_objects(rendered.directory)
    assert len(objects) == RENDERED_OBJECTS
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True)
    images = [
        c["image"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
    ]
    assert any("seamless-coordinator@sha256:" in i for i in images)


def test_credentials_command_keeps_what_it_stored(rendered: Rendered) -> None:
    before = rendered.project.pulumi("config", "get", "seamless-stack:credentials")
    assert "0 generated" in rendered.project.credentials()
    after = rendered.project.pulumi("config", "get", "seamless-stack:credentials")
    assert before == after and len(json.loads(after)) > 10
    stack_file = (rendered.project.work_dir / "Pulumi.prod.yaml").read_text()
    assert "secure:" in stack_file and json.loads(after)["redis.gateway"] not in stack_file


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeCluster]:
    with KubeCluster() as kube:
        yield kube


def _wait_namespace_gone(cluster: KubeCluster, deadline_s: float = 180) -> None:
    cluster.client.delete("v1", "Namespace", NAMESPACE)
    cluster.client.wait_gone("v1", "Namespace", NAMESPACE, None, deadline_s)


def test_rendered_objects_apply_server_side_under_restricted(
    rendered: Rendered, cluster: KubeCluster
) -> None:
    objects = rendered_objects(rendered.directory)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [NAMESPACE]
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    try:
        refused: list[str] = []
        warned: list[str] = []
        for obj in namespaces + [o for o in objects if o["kind"] != "Namespace"]:
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            try:
                _, warnings = cluster.client.apply(obj, field_manager="seamless-ssa-check")
            except KubeError as exc:
                refused.append(f"{name}: {exc}")
                continue
            warned.extend(f"{name}: {w}" for w in warnings)
        assert not refused, refused
        assert not warned, warned
        # The same namespace refuses a pod that breaks `restricted` (the check can fail).
        with pytest.raises(KubeError, match="violates PodSecurity"):
            cluster.client.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    # no securityContext at all: root allowed, no seccomp, capabilities kept
                    "metadata": {"name": "unrestricted-probe", "namespace": NAMESPACE},
                    "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
                },
                field_manager="seamless-ssa-check",
            )
    finally:
        _wait_namespace_gone(cluster)


def test_live_preview_up_no_changes_and_destroy(
    engine_env: dict[str, str], cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    client = cluster.client
    assert client.get("v1", "Namespace", NAMESPACE) is None
    project = new_project(tmp_path_factory.mktemp("live"), engine_env)
    project.credentials()
    live = {"kubernetes:kubeconfig": str(cluster.kubeconfig)}
    preview, up, again = project.drive("live-up", ["preview", "up", "preview-no-changes"], live)
    assert preview["changes"].get("create", 0) > RENDERED_OBJECTS
    assert up["result"] == "succeeded"
    _assert_no_changes(again)
    # What the engine awaited, seen from the API server.
    for d in client.list("apps/v1", "Deployment", NAMESPACE):
        assert d["status"].get("availableReplicas") == d["spec"]["replicas"], d["metadata"]
    for s in client.list("apps/v1", "StatefulSet", NAMESPACE):
        assert s["status"].get("readyReplicas") == s["spec"]["replicas"], s["metadata"]
    jobs = client.list("batch/v1", "Job", NAMESPACE)
    assert {j["metadata"]["name"] for j in jobs} == {"controlbus-acl-bootstrap", "minio-bootstrap"}
    assert all(j["status"].get("succeeded", 0) >= 1 for j in jobs)
    claims = client.list("v1", "PersistentVolumeClaim", NAMESPACE)
    assert claims and all(c["status"]["phase"] == "Bound" for c in claims)

    (destroy,) = project.drive("live-destroy", ["destroy"], live)
    assert destroy["result"] == "succeeded"
    assert destroy["changes"].get("delete", 0) == up["changes"]["create"]
    deadline = time.monotonic() + 180  # the namespace controller finishes what the engine began
    while client.get("v1", "Namespace", NAMESPACE) is not None:
        assert time.monotonic() < deadline, "namespace still there after destroy"
        time.sleep(1)


MANAGED = {
    "questdb": {
        "external": True,
        "dsn": "postgresql://qdb.managed.example:8812/qmtl",
        "username": "seamless",
    },
    "redis": {"external": True, "url": "redis.managed.example:6380"},
    "controlbus": {"external": True, "brokers": ["kafka-1.managed.example:9093"]},
}


def test_managed_overrides_render_the_same_way(
    engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("managed")
    stack_file = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    seamless = dict(stack_file["config"]["seamless-stack:seamless"])
    seamless["questdb_dsn"] = MANAGED["questdb"]["dsn"]
    seamless["redis_dsn"] = "redis://redis.managed.example:6380/3"
    project = new_project(root, engine_env, {**MANAGED, "seamless": seamless})
    project.pulumi("config", "set", "--secret", "seamless-stack:questdbPassword",
                   stdin=secrets.token_hex(12))  # fmt: skip
    project.pulumi("config", "set", "--secret", "seamless-stack:redisAdminPassword",
                   stdin=secrets.token_hex(12))  # fmt: skip
    project.credentials()
    directory = root / "manifests"
    try:
        preview, up, again = project.drive(
            "managed",
            ["preview", "up", "preview-no-changes"],
            {"kubernetes:renderYamlToDirectory": str(directory)},
        )
        assert preview["changes"].get("create", 0) > 0
        assert up["result"] == "succeeded"
        _assert_no_changes(again)
        objects = rendered_objects(directory)
        for obj in objects:
            kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True)
        workloads = {
            o["metadata"]["name"] for o in objects if o["kind"] in ("Deployment", "StatefulSet")
        }
        assert not workloads & {"questdb", "redis", "controlbus"}
        coordinator = next(
            o for o in objects
            if o["kind"] == "Secret" and o["metadata"]["name"] == "seamless-coordinator-secrets"
        )  # fmt: skip
        settings = yaml.safe_load(_secret_value(coordinator, "coordinator.yml"))
        assert "@qdb.managed.example:8812/" in settings["QUESTDB_DSN"]
        assert "@redis.managed.example:6380/" in settings["REDIS_DSN"]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
