"""The Docker platform (dev): renders the catalog onto one Docker host.

A private bridge network, one named volume per declared volume, one container per
service replica with its health check, memory/CPU limits, read-only root filesystem where
the image allows it, and every secret delivered as a file upload (never an env var); a
service's one-shot jobs (the ControlBus's users and ACLs) as containers run to completion
once it is healthy. The
coordinator image is built from `sdk/Dockerfile`. A Prometheus container loads the scrape
config and alert rules.

Files (config and secrets) never go into a service container by upload: Docker refuses
any upload into a container created read-only (`container rootfs is marked read-only`; the
provider uploads at `/`). Instead every directory a service gets files in is a volume
(`files_dirs`; a declared volume that already holds the path serves it), filled by a
*files* container: the same image, created and never started, not read-only, holding the
uploads. The service container mounts those volumes (files volumes read-only) and keeps
its read-only root filesystem.
"""

from __future__ import annotations

import posixpath

import pulumi
import pulumi_docker as docker

from infra.catalog import Catalog, JobSpec, ServiceSpec
from infra.components.identity import Credentials
from infra.observability import ObservabilityAssets

PROMETHEUS_PORT = 9090


def _cpus(limit: str) -> str:
    return str(int(limit[:-1]) / 1000) if limit.endswith("m") else limit


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


FILES_CONTAINER_MEMORY_MI = 32
FILES_CONTAINER_CPUS = "0.1"


def files_dirs(svc: ServiceSpec) -> list[str]:
    """The directories `svc` gets uploaded files in that none of its volumes holds: each
    becomes a volume of its own, so the upload works with a read-only root filesystem."""
    paths = [cfg.path for cfg in svc.config_files]
    paths += [item.file for item in svc.secrets if item.file is not None]
    dirs = {
        posixpath.dirname(path)
        for path in paths
        if not any(_under(path, vol.mount_path) for vol in svc.volumes)
    }
    # A directory inside another one already listed is served by that one's volume.
    return sorted(d for d in dirs if not any(o != d and _under(d, o) for o in dirs))


def scratch_tmpfs_options(svc: ServiceSpec) -> str:
    """Mount options of a scratch tmpfs: Docker's default adds `noexec`, which stays unless
    the service executes files it writes there (`scratch_exec`)."""
    return "rw,exec,size=256m" if svc.scratch_exec else "rw,noexec,nosuid,size=256m"


def _slug(path: str) -> str:
    return path.strip("/").replace("/", "-").replace(".", "") or "root"


def healthcheck(svc: ServiceSpec) -> docker.ContainerHealthcheckArgs:
    probe = svc.readiness
    return docker.ContainerHealthcheckArgs(
        tests=list(svc.docker_health),
        interval=f"{probe.period_s}s",
        timeout=f"{probe.timeout_s}s",
        retries=probe.failure_threshold,
        start_period=f"{probe.initial_delay_s}s",
    )


JOB_SCRATCH = "rw,noexec,nosuid,size=64m"


def job_uploads(job: JobSpec, credentials: Credentials) -> list[docker.ContainerUploadArgs]:
    uploads = [
        docker.ContainerUploadArgs(file=cfg.path, content=cfg.content, permissions="0555")
        for cfg in job.config_files
    ]
    for item in job.secrets:
        if item.file is None:
            raise ValueError(f"{job.name}: secret {item.key!r} has no file path")
        uploads.append(
            docker.ContainerUploadArgs(
                file=item.file,
                content=credentials.render(item.needs, item.render),
                permissions="0440",
                owner=str(job.run_as_user),
            )
        )
    return uploads


class DockerService(pulumi.ComponentResource):
    """One catalog service on Docker: its volumes and containers (one per replica), and its
    one-shot jobs (a container run to completion once the service is healthy)."""

    volumes: dict[str, docker.Volume]
    containers: list[docker.Container]
    files_containers: list[docker.Container]  # carry the uploads (never started)
    jobs: list[docker.Container]

    def __init__(
        self,
        name: str,
        svc: ServiceSpec,
        network: docker.Network,
        credentials: Credentials,
        image: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("seamless:docker:Service", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.volumes = {}
        self.containers = []
        self.files_containers = []
        uploads: list[docker.ContainerUploadArgs] = [
            docker.ContainerUploadArgs(file=cfg.path, content=cfg.content, permissions="0555")
            for cfg in svc.config_files
        ]
        for item in svc.secrets:
            if item.file is None:
                raise ValueError(
                    f"{svc.name}: secret {item.key!r} has no file path; Docker delivers "
                    "secrets only as files"
                )
            uploads.append(
                docker.ContainerUploadArgs(
                    file=item.file,
                    content=credentials.render(item.needs, item.render),
                    permissions="0440",
                    owner=str(svc.run_as_user),
                )
            )
        dirs = files_dirs(svc)
        targets = [cfg.path for cfg in svc.config_files]
        targets += [item.file for item in svc.secrets if item.file is not None]
        for replica in range(svc.replicas):
            hostname = svc.name if svc.replicas == 1 else f"{svc.name}-{replica}"
            mounts: list[docker.ContainerVolumeArgs] = []
            seeded: list[docker.ContainerVolumeArgs] = []  # what the files container mounts
            for vol in svc.volumes:
                volume = docker.Volume(
                    f"{name}-{replica}-{vol.name}",
                    name=f"seamless-{hostname}-{vol.name}",
                    labels=[docker.VolumeLabelArgs(label="seamless-stack", value=svc.name)],
                    opts=child,
                )
                self.volumes[f"{hostname}/{vol.name}"] = volume
                mount = docker.ContainerVolumeArgs(
                    volume_name=volume.name, container_path=vol.mount_path
                )
                mounts.append(mount)
                if any(_under(t, vol.mount_path) for t in targets):
                    seeded.append(mount)
            for directory in dirs:
                volume = docker.Volume(
                    f"{name}-{replica}-files-{_slug(directory)}",
                    name=f"seamless-{hostname}-files-{_slug(directory)}",
                    labels=[docker.VolumeLabelArgs(label="seamless-stack", value=svc.name)],
                    opts=child,
                )
                self.volumes[f"{hostname}/files:{directory}"] = volume
                seeded.append(
                    docker.ContainerVolumeArgs(volume_name=volume.name, container_path=directory)
                )
                mounts.append(
                    docker.ContainerVolumeArgs(
                        volume_name=volume.name, container_path=directory, read_only=True
                    )
                )
            # A scratch path that is also a files directory is served by its volume.
            scratch = [p for p in svc.scratch_paths if p not in dirs]
            after: list[pulumi.Resource] = []
            if uploads:
                # Created, never started: it only carries the uploads into the volumes.
                files = docker.Container(
                    f"{name}-{replica}-files",
                    name=f"{hostname}-files",
                    image=image,
                    start=False,
                    must_run=False,
                    network_mode="none",
                    # Never started, but limited like every container (should one be started).
                    memory=FILES_CONTAINER_MEMORY_MI,
                    cpus=FILES_CONTAINER_CPUS,
                    volumes=seeded,
                    uploads=uploads,
                    labels=[
                        docker.ContainerLabelArgs(label="seamless-stack", value=svc.name),
                        docker.ContainerLabelArgs(label="seamless-role", value="files"),
                    ],
                    opts=child,
                )
                self.files_containers.append(files)
                after.append(files)
            ports = [
                docker.ContainerPortArgs(internal=p.port, external=p.host_port, ip="127.0.0.1")
                for p in svc.ports
                if p.host_port is not None and replica == 0
            ]
            container = docker.Container(
                f"{name}-{replica}",
                name=hostname,
                hostname=hostname,
                image=image,
                envs=[f"{k}={v}" for k, v in sorted(svc.env.items())],
                command=[*svc.command, *svc.args] if (svc.command or svc.args) else None,
                ports=ports,
                volumes=mounts,
                tmpfs={path: scratch_tmpfs_options(svc) for path in scratch},
                read_only=svc.read_only_root,
                user=f"{svc.run_as_user}:{svc.run_as_user}",
                memory=svc.resources.memory_limit_mi,
                cpu_shares=max(2, int(float(_cpus(svc.resources.cpu_request)) * 1024)),
                cpus=_cpus(svc.resources.cpu_limit),
                healthcheck=healthcheck(svc),
                restart="unless-stopped",
                must_run=True,
                wait=True,
                wait_timeout=180,
                security_opts=["no-new-privileges:true"],
                capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[svc.name])
                ],
                labels=[docker.ContainerLabelArgs(label="seamless-stack", value=svc.name)],
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
            self.containers.append(container)
        self.jobs = []
        for job in svc.jobs:
            # Run to completion (`attach`) after the service's containers are healthy. Not
            # read-only: its files are uploaded into it (a read-only container refuses
            # uploads); its scratch (where it may stage secrets) is a tmpfs.
            self.jobs.append(
                docker.Container(
                    f"{name}-job-{job.name}",
                    name=job.name,
                    image=job.image,
                    command=list(job.command),
                    envs=[f"{k}={v}" for k, v in sorted(job.env.items())],
                    uploads=job_uploads(job, credentials),
                    tmpfs={"/tmp": JOB_SCRATCH},
                    user=f"{job.run_as_user}:{job.run_as_user}",
                    memory=job.resources.memory_limit_mi,
                    cpu_shares=max(2, int(float(_cpus(job.resources.cpu_request)) * 1024)),
                    cpus=_cpus(job.resources.cpu_limit),
                    must_run=False,
                    attach=True,
                    logs=True,
                    restart="no",
                    security_opts=["no-new-privileges:true"],
                    capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
                    networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
                    labels=[
                        docker.ContainerLabelArgs(label="seamless-stack", value=svc.name),
                        docker.ContainerLabelArgs(label="seamless-role", value="job"),
                    ],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=self.containers),
                )
            )
        self.register_outputs({"containers": [c.name for c in self.containers]})


class DockerPlatform(pulumi.ComponentResource):
    """Network, the images it builds, the services in dependency order, and Prometheus."""

    network: docker.Network
    built_images: dict[str, docker.Image]  # by service: those built from a Dockerfile
    services: dict[str, DockerService]
    prometheus: docker.Container

    def __init__(
        self,
        name: str,
        catalog: Catalog,
        credentials: Credentials,
        assets: ObservabilityAssets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("seamless:docker:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network = docker.Network(
            f"{name}-network",
            name=f"seamless-{catalog.config.stack}",
            driver="bridge",
            internal=False,
            labels=[docker.NetworkLabelArgs(label="seamless-stack", value=catalog.config.stack)],
            opts=child,
        )
        self.built_images = {}
        images: dict[str, pulumi.Input[str]] = {svc.name: svc.image for svc in catalog}
        for svc in catalog:
            if svc.build_context is not None:
                built = docker.Image(
                    f"{name}-{svc.name}-image",
                    image_name=svc.image,
                    build=docker.DockerBuildArgs(
                        context=svc.build_context, dockerfile=f"{svc.build_context}/Dockerfile"
                    ),
                    skip_push=not catalog.config.push_coordinator_image,
                    opts=child,
                )
                self.built_images[svc.name] = built
                images[svc.name] = built.image_name
        self.services = {}
        # Create services after the ones they dial, so `depends_on` follows the real edges.
        for svc in dependency_order(catalog):
            deps = [c for dep in svc.connects_to for c in self.services[dep].containers]
            self.services[svc.name] = DockerService(
                f"{name}-{svc.name}",
                svc,
                self.network,
                credentials,
                images[svc.name],
                opts=pulumi.ResourceOptions(parent=self, depends_on=deps),
            )
        self.prometheus = docker.Container(
            f"{name}-prometheus",
            name="prometheus",
            image=catalog.config.images["prometheus"],
            command=[
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
            ],
            uploads=[
                docker.ContainerUploadArgs(
                    file="/etc/prometheus/prometheus.yml", content=assets.scrape_config_yaml
                ),
                docker.ContainerUploadArgs(
                    file="/etc/prometheus/rules/seamless-alerts.yml",
                    content=assets.alert_rules_yaml,
                ),
            ],
            ports=[
                docker.ContainerPortArgs(
                    internal=PROMETHEUS_PORT, external=PROMETHEUS_PORT, ip="127.0.0.1"
                )
            ]
            if catalog.config.expose_host_ports
            else [],
            tmpfs={"/prometheus": "rw,size=512m"},
            memory=512,
            cpus="0.5",
            user="65534:65534",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "wget", "-qO-", f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready"],
                interval="10s",
                timeout="5s",
                retries=6,
            ),
            restart="unless-stopped",
            security_opts=["no-new-privileges:true"],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self.network.name)],
            opts=child,
        )
        self.register_outputs({"network": self.network.name, "services": sorted(self.services)})

    def workloads(self, service: str) -> list[pulumi.Resource]:
        return list(self.services[service].containers)


def dependency_order(catalog: Catalog) -> list[ServiceSpec]:
    done: dict[str, ServiceSpec] = {}
    pending = list(catalog)
    while pending:
        progressed = False
        for svc in list(pending):
            if all(dep in done for dep in svc.connects_to):
                done[svc.name] = svc
                pending.remove(svc)
                progressed = True
        if not progressed:
            cycle = ", ".join(s.name for s in pending)
            raise ValueError(f"dependency cycle among services: {cycle}")
    return list(done.values())


def dependency_waves(catalog: Catalog) -> list[list[str]]:
    """The catalog's services in waves: each after every service it dials (`connects_to`,
    the edges the platform turns into `depends_on`), the rest as early as possible."""
    waves: list[list[str]] = []
    level: dict[str, int] = {}
    for svc in dependency_order(catalog):
        level[svc.name] = max((level[d] + 1 for d in svc.connects_to), default=0)
        if level[svc.name] == len(waves):
            waves.append([])
        waves[level[svc.name]].append(svc.name)
    return waves
