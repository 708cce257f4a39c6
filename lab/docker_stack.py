"""A Docker stack's declared objects made real on a running dockerd, over the Engine API.

The Pulumi docker provider cannot be built here, so this does what it would do with the
inputs the program declares (`docker:index/*` resources as Pulumi's engine receives them,
see tests/engine/docker/declarations.py): networks and volumes created first, then each
container created with the same image, command, env, user, read-only root, tmpfs mounts,
volumes, limits, capabilities, security options, health check, restart policy, labels,
network aliases and host ports (on the declared 127.0.0.1), its uploads copied in as the
provider copies them (one tar entry per file, at `/`, with the declared mode and owner), and
started unless declared `start: false`. Containers are created in the order of the
catalog's dependency edges (as `depends_on` orders them for the engine) and a wave's
health checks must pass before the next wave starts (the provider's `wait: true`). A
container declared to run to completion (`attach: true`, `mustRun: false`: a service's
one-shot job) starts once its service is healthy and must exit 0 (the provider's attach).

Isolation from everything else on the daemon: every object carries the label
`seamless-test=<run id>` and its name gets the suffix `-<run id>`; host names, network
aliases (what services dial) and host ports stay as declared. `remove()` deletes what
carries the label, and nothing else.

The MinIO bucket, users, policies and attachments the program declares through the minio
provider are applied with MinIO's own admin API (the `minio` package's `MinioAdmin`, the
calls the provider makes through madmin-go), at the provider's declared endpoint with the
declared root credentials.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

SOCKET = "/var/run/docker.sock"
API = "v1.41"  # Debian's docker.io 20.10
TEST_LABEL = "seamless-test"
# How long a one-shot job may run: the ControlBus's users and ACLs take about a minute on
# two busy cores (nine JVM starts); the provider itself waits without a limit.
JOB_DEADLINE_S = 600.0

NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/image:Image"
MINIO_PROVIDER = "pulumi:providers:minio"
MINIO_BUCKET = "minio:index/s3Bucket:S3Bucket"
MINIO_USER = "minio:index/iamUser:IamUser"
MINIO_POLICY = "minio:index/iamPolicy:IamPolicy"
MINIO_ATTACH = "minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment"


class DockerStackError(RuntimeError):
    """A declared object the daemon refused, or a health check that did not pass."""


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")


def seconds(duration: str) -> float:
    """A Go duration as the provider takes it ("10s", "1m30s") in seconds."""
    match = _DURATION.match(duration.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"unsupported duration {duration!r}")
    h, m, s = match.groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)


def health_deadline_s(check: Mapping[str, Any]) -> float:
    """How long dockerd may take to call a declared health check healthy or unhealthy:
    the start period, then `retries` failing probes (each up to `timeout`, `interval`
    apart) plus the first probe's wait."""
    interval = seconds(check.get("interval", "30s"))
    timeout = seconds(check.get("timeout", "30s"))
    start = seconds(check.get("startPeriod", "0s"))
    retries = int(check.get("retries", 3))
    return start + (retries + 1) * (interval + timeout)


def _labels(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {item["label"]: item["value"] for item in items or ()}


def upload_tar(uploads: Iterable[Mapping[str, Any]]) -> bytes:
    """The archive the provider sends for a container's uploads: one regular file per
    upload, named by its absolute path (extracted at `/`), with the declared permissions
    and numeric owner/group (root when not declared)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for upload in uploads:
            if "content" not in upload:
                raise DockerStackError(f"upload {upload['file']}: only `content` is supported")
            data = str(upload["content"]).encode()
            info = tarfile.TarInfo(str(upload["file"]).lstrip("/"))
            info.size = len(data)
            mode = upload.get("permissions")
            info.mode = int(mode, 8) if mode else (0o755 if upload.get("executable") else 0o644)
            info.uid = int(upload.get("owner") or 0)
            info.gid = int(upload.get("group") or 0)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Engine:
    """The few Engine API calls the provider makes, over the daemon's unix socket."""

    socket: str = SOCKET
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(uds=self.socket),
            base_url=f"http://docker/{API}",
            timeout=httpx.Timeout(120.0),
        )

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, *, ok: Iterable[int] = (), **kw: Any) -> httpx.Response:
        response = self.client.request(method, path, **kw)
        if response.status_code >= 400 and response.status_code not in set(ok):
            raise DockerStackError(
                f"{method} {path}: {response.status_code} {response.text.strip()[:2000]}"
            )
        return response

    def inspect(self, container: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"/containers/{container}/json").json()
        return data

    def logs(self, container: str, tail: int = 40) -> str:
        raw = self.call(
            "GET",
            f"/containers/{container}/logs",
            params={"stdout": 1, "stderr": 1, "tail": tail},
            ok=(404,),
        ).content
        # Non-TTY logs are multiplexed: 8-byte frame headers before each chunk.
        out, i = bytearray(), 0
        while i + 8 <= len(raw):
            size = int.from_bytes(raw[i + 4 : i + 8], "big")
            out += raw[i + 8 : i + 8 + size]
            i += 8 + size
        return out.decode(errors="replace") if out else raw.decode(errors="replace")

    def labelled(self, kind: str, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        if kind == "containers":
            items: list[dict[str, Any]] = self.call(
                "GET", "/containers/json", params={"all": 1, "filters": filters}
            ).json()
            return items
        if kind == "volumes":
            vols: list[dict[str, Any]] = (
                self.call("GET", "/volumes", params={"filters": filters}).json()["Volumes"] or []
            )
            return vols
        nets: list[dict[str, Any]] = self.call(
            "GET", "/networks", params={"filters": filters}
        ).json()
        return nets


def is_job(inputs: Mapping[str, Any]) -> bool:
    """A container declared to run to completion: a service's one-shot job."""
    return bool(inputs.get("attach")) and inputs.get("mustRun") is False


def container_body(
    inputs: Mapping[str, Any], rename: Callable[[str], str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The create request for one declared `docker.Container` (inputs as recorded)."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in inputs.get("ports") or []:
        key = f"{int(port['internal'])}/{port.get('protocol', 'tcp')}"
        exposed[key] = {}
        if port.get("external") is not None:
            bindings.setdefault(key, []).append(
                {"HostIp": port.get("ip", "0.0.0.0"), "HostPort": str(int(port["external"]))}
            )
    binds = [
        f"{rename(v['volumeName'])}:{v['containerPath']}" + (":ro" if v.get("readOnly") else "")
        for v in inputs.get("volumes") or []
    ]
    host: dict[str, Any] = {
        "Binds": binds,
        "PortBindings": bindings,
        "ReadonlyRootfs": bool(inputs.get("readOnly", False)),
        "Tmpfs": dict(inputs.get("tmpfs") or {}),
        "SecurityOpt": list(inputs.get("securityOpts") or []),
        "CapDrop": list((inputs.get("capabilities") or {}).get("drops") or []),
        "CapAdd": list((inputs.get("capabilities") or {}).get("adds") or []),
        "RestartPolicy": {"Name": inputs.get("restart", "no")},
    }
    if inputs.get("memory"):
        host["Memory"] = int(inputs["memory"]) * 1024 * 1024
    if inputs.get("cpus"):
        host["NanoCpus"] = int(float(inputs["cpus"]) * 1e9)
    if inputs.get("cpuShares"):
        host["CpuShares"] = int(inputs["cpuShares"])
    body: dict[str, Any] = {
        "Image": inputs["image"],
        "Env": list(inputs.get("envs") or []),
        "ExposedPorts": exposed,
        "Labels": {**_labels(inputs.get("labels")), **labels},
        "HostConfig": host,
    }
    for key, api in (("hostname", "Hostname"), ("user", "User")):
        if inputs.get(key):
            body[api] = inputs[key]
    if inputs.get("command"):
        body["Cmd"] = list(inputs["command"])
    if inputs.get("entrypoints"):
        body["Entrypoint"] = list(inputs["entrypoints"])
    check = inputs.get("healthcheck")
    if check:
        body["Healthcheck"] = {
            "Test": list(check["tests"]),
            "Interval": int(seconds(check.get("interval", "0s")) * 1e9),
            "Timeout": int(seconds(check.get("timeout", "0s")) * 1e9),
            "StartPeriod": int(seconds(check.get("startPeriod", "0s")) * 1e9),
            "Retries": int(check.get("retries", 0)),
        }
    networks = inputs.get("networksAdvanced") or []
    if inputs.get("networkMode"):
        host["NetworkMode"] = inputs["networkMode"]
    elif networks:
        first = networks[0]
        host["NetworkMode"] = rename(first["name"])
        body["NetworkingConfig"] = {
            "EndpointsConfig": {
                rename(first["name"]): {"Aliases": list(first.get("aliases") or [])}
            }
        }
    if len(networks) > 1:
        raise DockerStackError(f"{inputs['name']}: more than one network is not supported")
    return body


@dataclass
class DockerStack:
    """The declared objects of one stack, made real under one run id."""

    resources: list[dict[str, Any]]
    run_id: str
    order: list[list[str]]  # waves of catalog service names, dependencies first
    engine: Engine = field(default_factory=Engine)
    log: Callable[[str], None] = print
    created: dict[str, str] = field(default_factory=dict)  # declared container name -> id
    health_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{TEST_LABEL}={self.run_id}"

    def name(self, declared: str) -> str:
        return f"{declared}-{self.run_id}"

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        return [r["inputs"] for r in self.resources if r["type"] == typ]

    def containers(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.of_type(CONTAINER)}

    # --- create ---------------------------------------------------------------------------

    def create(self, after_wave: Callable[[list[str]], None] | None = None) -> None:
        for net in self.of_type(NETWORK):
            self.engine.call(
                "POST",
                "/networks/create",
                json={
                    "Name": self.name(net["name"]),
                    "Driver": net.get("driver", "bridge"),
                    "Internal": bool(net.get("internal", False)),
                    "Labels": {**_labels(net.get("labels")), TEST_LABEL: self.run_id},
                    "CheckDuplicate": True,
                },
            )
        for vol in self.of_type(VOLUME):
            self.engine.call(
                "POST",
                "/volumes/create",
                json={
                    "Name": self.name(vol["name"]),
                    "Labels": {**_labels(vol.get("labels")), TEST_LABEL: self.run_id},
                },
            )
        containers = self.containers()
        by_service: dict[str, list[str]] = {}
        for name, inputs in containers.items():
            service = _labels(inputs.get("labels")).get("seamless-stack", name)
            by_service.setdefault(service, []).append(name)
        placed = {svc for wave in self.order for svc in wave}
        # Containers outside the catalog's edges (Prometheus) depend on nothing: first wave.
        waves = [list(w) for w in self.order]
        waves[0] = [*waves[0], *sorted(s for s in by_service if s not in placed)]
        for wave in waves:
            started: list[str] = []
            jobs: list[str] = []
            for service in wave:
                # the files container (never started) before the service that mounts it
                names = sorted(by_service.get(service, []), key=lambda n: bool(
                    containers[n].get("start", True)))  # fmt: skip
                for name in names:
                    if is_job(containers[name]):
                        jobs.append(name)
                        continue
                    self._container(containers[name])
                    if containers[name].get("start", True) is not False:
                        started.append(name)
            self.await_healthy(started)
            for name in jobs:  # after the services they work on are healthy
                self._container(containers[name])
            self.await_done(jobs)
            if after_wave is not None:
                after_wave(wave)

    def _container(self, inputs: Mapping[str, Any]) -> None:
        name = inputs["name"]
        body = container_body(inputs, self.name, {TEST_LABEL: self.run_id})
        created = self.engine.call(
            "POST", "/containers/create", params={"name": self.name(name)}, json=body
        ).json()
        cid = created["Id"]
        self.created[name] = cid
        if inputs.get("uploads"):
            self.engine.call(
                "PUT",
                f"/containers/{cid}/archive",
                params={"path": "/"},
                content=upload_tar(inputs["uploads"]),
                headers={"Content-Type": "application/x-tar"},
            )
        if inputs.get("start", True) is not False:
            self.engine.call("POST", f"/containers/{cid}/start")
            self.log(f"docker-stack: started {self.name(name)}")

    def recreate(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """Replace the declared container `name` by a new one from its declared inputs,
        with `env` over the declared environment (None: exactly as declared), and wait for
        its health check. Its volumes, network aliases and host ports stay as declared."""
        inputs = dict(self.containers()[name])
        if env:
            kept = [e for e in inputs.get("envs") or [] if e.split("=", 1)[0] not in env]
            inputs["envs"] = [*kept, *(f"{k}={v}" for k, v in env.items())]
        self.engine.call(
            "DELETE", f"/containers/{self.created[name]}", params={"force": 1}, ok=(404,)
        )
        self._container(inputs)
        self.await_healthy([name])

    def await_done(self, names: list[str], deadline_s: float = JOB_DEADLINE_S) -> None:
        """Every job in `names` exited 0 within `deadline_s`; one that exits otherwise fails
        at once, with its logs."""
        began = time.monotonic()
        pending = set(names)
        while pending:
            for name in sorted(pending):
                state = self.engine.inspect(self.created[name])["State"]
                if state.get("Running") or state.get("Status") == "created":
                    if time.monotonic() - began > deadline_s:
                        raise DockerStackError(
                            f"{self.name(name)} still running after {deadline_s:.0f}s\n"
                            f"--- logs ---\n{self.engine.logs(self.created[name])}"
                        )
                    continue
                if state.get("ExitCode") != 0:
                    raise DockerStackError(
                        f"{self.name(name)} exited {state.get('ExitCode')}\n"
                        f"--- logs ---\n{self.engine.logs(self.created[name])}"
                    )
                self.health_seconds[name] = round(time.monotonic() - began, 1)
                pending.discard(name)
            if pending:
                time.sleep(0.5)

    def await_healthy(self, names: list[str]) -> None:
        """Every container in `names` healthy (or running, with no health check) within
        the deadline its declared health check allows; a container that exits or turns
        unhealthy fails at once, with its logs."""
        containers = self.containers()
        began = time.monotonic()
        deadlines = {
            n: began + health_deadline_s(containers[n]["healthcheck"])
            if containers[n].get("healthcheck")
            else began + 30
            for n in names
        }
        pending = set(names)
        while pending:
            for name in sorted(pending):
                state = self.engine.inspect(self.created[name])["State"]
                health = (state.get("Health") or {}).get("Status")
                if health == "healthy" or (health is None and state.get("Running")):
                    self.health_seconds[name] = round(time.monotonic() - began, 1)
                    pending.discard(name)
                    continue
                failed = health == "unhealthy" or not (
                    state.get("Running") or state.get("Restarting")
                )
                if failed or time.monotonic() > deadlines[name]:
                    probes = [
                        (p.get("ExitCode"), p.get("Output", "").strip()[-300:])
                        for p in (state.get("Health") or {}).get("Log") or []
                    ][-3:]
                    raise DockerStackError(
                        f"{self.name(name)} not healthy (status {health or state.get('Status')},"
                        f" exit {state.get('ExitCode')}, after "
                        f"{time.monotonic() - began:.0f}s of "
                        f"{deadlines[name] - began:.0f}s allowed); last probes: {probes}\n"
                        f"--- logs ---\n{self.engine.logs(self.created[name])}"
                    )
            if pending:
                time.sleep(0.5)

    # --- the object store -----------------------------------------------------------------

    def apply_minio(self) -> None:
        """Bucket, users, policies and attachments as declared, through MinIO's admin API
        at the provider's declared endpoint with its declared root credentials."""
        from minio import Minio, MinioAdmin
        from minio.credentials.providers import StaticProvider

        (provider,) = self.of_type(MINIO_PROVIDER)
        creds = StaticProvider(provider["minioUser"], provider["minioPassword"])
        endpoint = provider["minioServer"]
        secure = bool(provider.get("minioSsl", False))
        s3 = Minio(endpoint, credentials=creds, secure=secure)
        for bucket in self.of_type(MINIO_BUCKET):
            if bucket.get("acl", "private") != "private":
                raise DockerStackError(f"bucket acl {bucket['acl']!r} is not supported")
            if not s3.bucket_exists(bucket["bucket"]):
                s3.make_bucket(bucket["bucket"])
        admin = MinioAdmin(endpoint=endpoint, credentials=creds, secure=secure)
        for user in self.of_type(MINIO_USER):
            admin.user_add(user["name"], user["secret"])
        for policy in self.of_type(MINIO_POLICY):
            admin.policy_add(policy["name"], policy=json.loads(policy["policy"]))
        for attach in self.of_type(MINIO_ATTACH):
            admin.attach_policy([attach["policyName"]], user=attach["userName"])

    # --- remove ---------------------------------------------------------------------------

    def remove(self) -> list[str]:
        """Delete every container, volume and network carrying this run's label; returns
        what is left (nothing, unless the daemon refused)."""
        for c in self.engine.labelled("containers", self.label):
            self.engine.call(
                "DELETE", f"/containers/{c['Id']}", params={"force": 1, "v": 1}, ok=(404,)
            )
        for v in self.engine.labelled("volumes", self.label):
            self.engine.call("DELETE", f"/volumes/{quote(v['Name'])}", ok=(404,))
        for n in self.engine.labelled("networks", self.label):
            self.engine.call("DELETE", f"/networks/{n['Id']}", ok=(404,))
        left = [
            f"{kind}: {item.get('Name') or item.get('Names') or item.get('Id')}"
            for kind in ("containers", "volumes", "networks")
            for item in self.engine.labelled(kind, self.label)
        ]
        return left
