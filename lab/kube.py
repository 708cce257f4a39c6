"""A real Kubernetes control plane as local processes, for the engine tests.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run on free loopback ports
like the other lab servers (real readiness: etcd `/health`, the API server's `/readyz`, the
controllers' `/healthz`); kwok plays the nodes, so pods the controllers create are scheduled
onto simulated nodes, become ready, and Job pods finish. A pool of PersistentVolumes stands in
for a storage provisioner, so StatefulSets' claims bind. Nothing here reaches beyond
127.0.0.1; every binary comes from `scripts/engine-tools.sh` (`.tools/bin`).
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import yaml

from lab.servers import LocalServer, ServerStartError, free_port, http_ok, tool_path

ADMIN_TOKEN_USER = "seamless-admin"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")


class KubeError(RuntimeError):
    """The API server refused a request; the message carries its status and reason."""


class EtcdServer(LocalServer):
    name = "etcd"
    startup_timeout = 30.0

    def pick_ports(self) -> None:
        self.client_port = free_port()
        self.peer_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    def command(self) -> list[str]:
        peer = f"http://{self.host}:{self.peer_port}"
        return [
            str(tool_path("bin", "etcd")),
            "--name", "lab",
            "--data-dir", str(self.workdir / "data"),
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"lab={peer}",
            "--log-level", "warn",
            "--unsafe-no-fsync",  # a throwaway test store: durability buys nothing here
        ]  # fmt: skip

    def ready(self) -> bool:
        return http_ok(f"{self.url}/health")


class KubeApiServer(LocalServer):
    """kube-apiserver with a self-signed serving certificate, a static admin token (in
    `system:masters`), RBAC, and the default admission chain (PodSecurity included)."""

    name = "kube-apiserver"
    startup_timeout = 120.0

    def __init__(self, etcd_url: str, workdir: Path | None = None) -> None:
        self.etcd_url = etcd_url
        super().__init__(workdir)
        self.token = secrets.token_urlsafe(32)
        self.cert_dir = self.workdir / "certs"
        self.cert_dir.mkdir(exist_ok=True)
        key = self.workdir / "service-account.key"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        self.service_account_key = key
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.token},{ADMIN_TOKEN_USER},1,"system:masters"\n')
        tokens.chmod(0o600)
        self.token_file = tokens
        self.kubeconfig = self.workdir / "kubeconfig"

    def pick_ports(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        # The self-signed certificate file holds the serving certificate and its own CA.
        return self.cert_dir / "apiserver.crt"

    def command(self) -> list[str]:
        return [
            str(tool_path("bin", "kube-apiserver")),
            "--etcd-servers", self.etcd_url,
            "--bind-address", self.host,
            "--advertise-address", self.host,
            "--secure-port", str(self.port),
            "--cert-dir", str(self.cert_dir),
            "--token-auth-file", str(self.token_file),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(self.service_account_key),
            "--service-account-signing-key-file", str(self.service_account_key),
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--allow-privileged=false",
            "--profiling=false",
            "--enable-priority-and-fairness=false",
            "--endpoint-reconciler-type", "none",
            # It taints every new node not-ready until the node-lifecycle controller (not
            # run here: kwok's nodes have no kubelet to evict from) lifts the taint.
            "--disable-admission-plugins", "TaintNodesByCondition",
        ]  # fmt: skip

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def ready(self) -> bool:
        if not self.ca_file.exists():
            return False
        try:
            response = httpx.get(
                f"{self.url}/readyz",
                headers={"Authorization": f"Bearer {self.token}"},
                verify=self.ssl_context(),
                timeout=2.0,
            )
        except (httpx.HTTPError, ssl.SSLError):
            return False
        if response.status_code != 200:
            return False
        self._write_kubeconfig()
        return True

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "lab",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": ADMIN_TOKEN_USER, "user": {"token": self.token}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": ADMIN_TOKEN_USER}}],
            "current-context": "lab",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)


class _SecureHealthServer(LocalServer):
    """A control-plane component serving `/healthz` on a self-signed loopback port."""

    binary = ""

    def __init__(self, kubeconfig: Path, workdir: Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        super().__init__(workdir)

    def pick_ports(self) -> None:
        self.port = free_port()

    def base_command(self) -> list[str]:
        return [
            str(tool_path("bin", self.binary)),
            "--kubeconfig", str(self.kubeconfig),
            "--authentication-kubeconfig", str(self.kubeconfig),
            "--authorization-kubeconfig", str(self.kubeconfig),
            "--bind-address", self.host,
            "--secure-port", str(self.port),
            "--cert-dir", str(self.workdir / "certs"),
            "--leader-elect=false",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            # Its certificate is self-signed at start and only read here, on loopback.
            response = httpx.get(f"https://{self.host}:{self.port}/healthz", verify=False)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text == "ok"


# Only the controllers a stack's objects need: workloads, their pods' disruption budgets,
# endpoints for Services, volume binding, and namespace/garbage clean-up for `destroy`.
CONTROLLERS = (
    "namespace-controller",
    "serviceaccount-controller",
    "garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "job-controller",
    "ttl-after-finished-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "disruption-controller",
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
)


class KubeControllerManager(_SecureHealthServer):
    name = "kube-controller-manager"
    binary = "kube-controller-manager"
    startup_timeout = 90.0

    def command(self) -> list[str]:
        return [
            *self.base_command(),
            "--controllers", ",".join(CONTROLLERS),
            "--use-service-account-credentials=false",
            "--concurrent-deployment-syncs", "10",
            "--concurrent-statefulset-syncs", "10",
        ]  # fmt: skip


class KubeScheduler(_SecureHealthServer):
    name = "kube-scheduler"
    binary = "kube-scheduler"
    startup_timeout = 60.0

    def command(self) -> list[str]:
        return self.base_command()


class KwokServer(LocalServer):
    """kwok managing the nodes annotated `kwok.x-k8s.io/node=fake` with our stage file."""

    name = "kwok"
    startup_timeout = 60.0

    def __init__(self, kubeconfig: Path, workdir: Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        super().__init__(workdir)

    def pick_ports(self) -> None:
        self.port = free_port()

    def command(self) -> list[str]:
        return [
            str(tool_path("bin", "kwok")),
            "--kubeconfig", str(self.kubeconfig),
            "--config", str(STAGES_FILE),
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
            "--server-address", f"{self.host}:{self.port}",
            "--cidr", "10.244.0.1/16",
            "--node-ip", self.host,
            "--node-lease-duration-seconds", "40",
        ]  # fmt: skip

    def ready(self) -> bool:
        return http_ok(f"http://{self.host}:{self.port}/healthz")


class KubeClient:
    """A minimal REST client: discovery, server-side apply, get, delete, wait."""

    def __init__(self, api: KubeApiServer) -> None:
        self._http = httpx.Client(
            base_url=api.url,
            headers={"Authorization": f"Bearer {api.token}"},
            verify=api.ssl_context(),
            timeout=30.0,
        )
        self._plurals: dict[tuple[str, str], tuple[str, bool]] = {}

    def close(self) -> None:
        self._http.close()

    def _discover(self, api_version: str) -> None:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        response = self._http.get(prefix)
        _raise_for(response)
        for res in response.json()["resources"]:
            if "/" not in res["name"]:
                self._plurals[(api_version, res["kind"])] = (res["name"], res["namespaced"])

    def path(self, api_version: str, kind: str, name: str, namespace: str | None) -> str:
        if (api_version, kind) not in self._plurals:
            self._discover(api_version)
        plural, namespaced = self._plurals[(api_version, kind)]
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        scope = f"/namespaces/{namespace}" if namespaced and namespace else ""
        return f"{prefix}{scope}/{plural}/{quote(name)}"

    def apply(
        self, obj: Mapping[str, Any], *, field_manager: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Server-side apply one object; returns it and the warnings the server sent."""
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        response = self._http.patch(
            path,
            params={"fieldManager": field_manager, "force": "true"},
            content=yaml.safe_dump(dict(obj)),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        _raise_for(response)
        warnings = response.headers.get_list("warning")
        return response.json(), warnings

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        response = self._http.get(self.path(api_version, kind, name, namespace))
        if response.status_code == 404:
            return None
        _raise_for(response)
        result: dict[str, Any] = response.json()
        return result

    def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        path = self.path(api_version, kind, "", namespace).rstrip("/")
        response = self._http.get(path)
        _raise_for(response)
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        response = self._http.delete(self.path(api_version, kind, name, namespace))
        if response.status_code != 404:
            _raise_for(response)

    def wait_gone(
        self, api_version: str, kind: str, name: str, namespace: str | None, deadline_s: float
    ) -> None:
        deadline = time.monotonic() + deadline_s
        while self.get(api_version, kind, name, namespace) is not None:
            if time.monotonic() > deadline:
                raise KubeError(f"{kind} {name} still exists after {deadline_s:.0f} s")
            time.sleep(0.5)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        reason = response.json().get("message", response.text)
    except ValueError:
        reason = response.text
    raise KubeError(
        f"{response.request.method} {response.request.url.path}: {response.status_code} {reason}"
    )


class KubeCluster:
    """The whole control plane plus simulated nodes and a pool of volumes."""

    def __init__(self, *, nodes: int = 2, volumes: int = 16, volume_size_gi: int = 50) -> None:
        self.nodes = nodes
        self.volumes = volumes
        self.volume_size_gi = volume_size_gi
        self.etcd = EtcdServer()
        self._started: list[LocalServer] = []
        self.api: KubeApiServer | None = None
        self._client: KubeClient | None = None

    @property
    def kubeconfig(self) -> Path:
        assert self.api is not None, "the cluster is not started"
        return self.api.kubeconfig

    @property
    def client(self) -> KubeClient:
        assert self._client is not None, "the cluster is not started"
        return self._client

    def start(self) -> Self:
        try:
            self._start(self.etcd)
            self.api = KubeApiServer(self.etcd.url)
            self._start(self.api)
            self._client = KubeClient(self.api)
            for component in (
                KubeControllerManager(self.api.kubeconfig),
                KubeScheduler(self.api.kubeconfig),
                KwokServer(self.api.kubeconfig),
            ):
                self._start(component)
            self._add_nodes()
            self._add_volumes()
            self._wait_nodes_ready(deadline_s=60)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _start(self, server: LocalServer) -> None:
        self._started.append(server)
        server.start()

    def _add_nodes(self) -> None:
        for i in range(self.nodes):
            self.client.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": f"kwok-node-{i}",
                        "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                        "labels": {"kubernetes.io/hostname": f"kwok-node-{i}", "type": "kwok"},
                    },
                },
                field_manager="seamless-lab",
            )

    def _add_volumes(self) -> None:
        for i in range(self.volumes):
            self.client.apply(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"lab-pv-{i}"},
                    "spec": {
                        "capacity": {"storage": f"{self.volume_size_gi}Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Delete",
                        "hostPath": {"path": f"/var/lib/seamless-lab/pv-{i}"},
                    },
                },
                field_manager="seamless-lab",
            )

    def _wait_nodes_ready(self, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        while True:
            nodes = self.client.list("v1", "Node")
            ready = [
                n
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) >= self.nodes:
                return
            if time.monotonic() > deadline:
                raise ServerStartError(f"only {len(ready)} of {self.nodes} kwok nodes ready")
            time.sleep(0.5)

    def cleanup(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for server in reversed(self._started):
            with contextlib.suppress(Exception):
                server.cleanup()
        self._started.clear()

    def log_tails(self) -> str:
        return "\n".join(f"--- {s.name} ---\n{s.log_tail(15)}" for s in self._started)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


@contextlib.contextmanager
def kube_cluster(**kwargs: Any) -> Iterator[KubeCluster]:
    with KubeCluster(**kwargs) as cluster:
        yield cluster
