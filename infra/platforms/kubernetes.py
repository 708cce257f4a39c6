"""The Kubernetes platform (prod): renders the catalog into a namespace.

Per service: a ServiceAccount (no token mounted), a ConfigMap and a Secret for its files,
a Deployment (or a StatefulSet with PVCs for stateful services), a Service, a
PodDisruptionBudget when it runs more than one replica, and a NetworkPolicy that admits
exactly the services the catalog says dial it. The namespace denies all traffic by default
and enforces the `restricted` Pod Security Standard.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1._inputs import DeploymentSpecArgsDict, StatefulSetSpecArgsDict
from pulumi_kubernetes.batch.v1._inputs import JobSpecArgsDict
from pulumi_kubernetes.core.v1._inputs import (
    ContainerArgsDict,
    EnvVarArgsDict,
    PersistentVolumeClaimArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    PodSpecArgsDict,
    PodTemplateSpecArgsDict,
    ProbeArgsDict,
    ResourceRequirementsArgsDict,
    SecurityContextArgsDict,
    ServicePortArgsDict,
    ServiceSpecArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)
from pulumi_kubernetes.meta.v1._inputs import LabelSelectorArgsDict, ObjectMetaArgsDict
from pulumi_kubernetes.networking.v1._inputs import (
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)
from pulumi_kubernetes.policy.v1._inputs import PodDisruptionBudgetSpecArgsDict

from infra.catalog import Catalog, JobSpec, Resources, ServiceSpec
from infra.components.identity import Credentials
from infra.observability import ObservabilityAssets

PROMETHEUS_NAMESPACE = "monitoring"  # where the cluster's Prometheus runs (operator default)
NAME_LABEL = "app.kubernetes.io/name"


def _labels(name: str) -> dict[str, str]:
    return {NAME_LABEL: name, "app.kubernetes.io/part-of": "seamless-stack"}


def _meta(name: str, namespace: pulumi.Input[str], labels: dict[str, str]) -> ObjectMetaArgsDict:
    return {"name": name, "namespace": namespace, "labels": labels}


def _tcp(ports: list[int]) -> list[NetworkPolicyPortArgsDict]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


def probe_manifest(svc: ServiceSpec, liveness: bool) -> ProbeArgsDict:
    probe = svc.liveness if liveness else svc.readiness
    base: ProbeArgsDict = {
        "initial_delay_seconds": probe.initial_delay_s,
        "period_seconds": probe.period_s,
        "timeout_seconds": probe.timeout_s,
        "failure_threshold": probe.failure_threshold,
    }
    if probe.path is None:
        base["tcp_socket"] = {"port": probe.port}
    else:
        base["http_get"] = {"path": probe.path, "port": probe.port}
    return base


def resources_manifest(r: Resources) -> ResourceRequirementsArgsDict:
    return {
        "requests": {"cpu": r.cpu_request, "memory": f"{r.memory_request_mi}Mi"},
        "limits": {"cpu": r.cpu_limit, "memory": f"{r.memory_limit_mi}Mi"},
    }


def container_security(run_as_user: int, read_only_root: bool) -> SecurityContextArgsDict:
    """The `restricted` Pod Security Standard, as every container of the bundle runs."""
    return {
        "run_as_non_root": True,
        "run_as_user": run_as_user,
        "run_as_group": run_as_user,
        "allow_privilege_escalation": False,
        "read_only_root_filesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def container_manifest(
    svc: ServiceSpec, image: pulumi.Input[str], secret_name: str | None
) -> ContainerArgsDict:
    env: list[EnvVarArgsDict] = [{"name": k, "value": v} for k, v in sorted(svc.env.items())]
    if svc.pod_name_env is not None:
        env.append(
            {"name": svc.pod_name_env, "value_from": {"field_ref": {"field_path": "metadata.name"}}}
        )
    for item in svc.secrets:
        if item.env is not None:
            assert secret_name is not None
            env.append(
                {
                    "name": item.env,
                    "value_from": {"secret_key_ref": {"name": secret_name, "key": item.key}},
                }
            )
    mounts: list[VolumeMountArgsDict] = []
    for item in svc.secrets:
        if item.file is not None:
            mounts.append(
                {
                    "name": "secrets",
                    "mount_path": item.file,
                    "sub_path": item.key,
                    "read_only": True,
                }
            )
    for cfg in svc.config_files:
        mounts.append(
            {"name": "config", "mount_path": cfg.path, "sub_path": cfg.key, "read_only": True}
        )
    for vol in svc.volumes:
        mounts.append({"name": vol.name, "mount_path": vol.mount_path})
    for i, path in enumerate(svc.scratch_paths):
        mounts.append({"name": f"scratch-{i}", "mount_path": path})
    container: ContainerArgsDict = {
        "name": svc.name,
        "image": image,
        "image_pull_policy": "Always",
        "ports": [{"name": p.name, "container_port": p.port, "protocol": "TCP"} for p in svc.ports],
        "env": env,
        "volume_mounts": mounts,
        "readiness_probe": probe_manifest(svc, liveness=False),
        "liveness_probe": probe_manifest(svc, liveness=True),
        "resources": resources_manifest(svc.resources),
        "security_context": container_security(svc.run_as_user, svc.read_only_root),
    }
    if svc.command:
        container["command"] = list(svc.command)
    if svc.args:
        container["args"] = list(svc.args)
    return container


def pod_spec(
    svc: ServiceSpec,
    image: pulumi.Input[str],
    secret_name: str | None,
    configmap: str | None,
) -> PodSpecArgsDict:
    volumes: list[VolumeArgsDict] = []
    if secret_name is not None:
        volumes.append(
            {"name": "secrets", "secret": {"secret_name": secret_name, "default_mode": 0o440}}
        )
    if configmap is not None:
        volumes.append({"name": "config", "config_map": {"name": configmap, "default_mode": 0o555}})
    for i, _ in enumerate(svc.scratch_paths):
        volumes.append({"name": f"scratch-{i}", "empty_dir": {"size_limit": "256Mi"}})
    return {
        "service_account_name": svc.name,
        "automount_service_account_token": False,
        "security_context": {
            "run_as_non_root": True,
            "run_as_user": svc.run_as_user,
            "fs_group": svc.run_as_user,
            "seccomp_profile": {"type": "RuntimeDefault"},
        },
        "containers": [container_manifest(svc, image, secret_name)],
        "volumes": volumes,
    }


def service_ports(svc: ServiceSpec) -> list[ServicePortArgsDict]:
    return [{"name": p.name, "port": p.port, "target_port": p.port} for p in svc.ports]


def volume_claims(
    svc: ServiceSpec, storage_class: str | None
) -> list[PersistentVolumeClaimArgsDict]:
    claims: list[PersistentVolumeClaimArgsDict] = []
    for v in svc.volumes:
        spec: PersistentVolumeClaimSpecArgsDict = {
            "access_modes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{v.size_gi}Gi"}},
        }
        if storage_class:
            spec["storage_class_name"] = storage_class
        claims.append({"metadata": {"name": v.name}, "spec": spec})
    return claims


class ServiceDeployment(pulumi.ComponentResource):
    """One catalog service on Kubernetes: its workload, Service and supporting objects."""

    service_account: k8s.core.v1.ServiceAccount
    config_map: k8s.core.v1.ConfigMap | None
    secret: k8s.core.v1.Secret | None
    workload: k8s.apps.v1.Deployment | k8s.apps.v1.StatefulSet
    service: k8s.core.v1.Service
    headless_service: k8s.core.v1.Service | None
    pdb: k8s.policy.v1.PodDisruptionBudget | None
    network_policy: k8s.networking.v1.NetworkPolicy

    def __init__(
        self,
        name: str,
        svc: ServiceSpec,
        namespace: pulumi.Input[str],
        credentials: Credentials,
        image: pulumi.Input[str],
        network_policy: NetworkPolicySpecArgsDict,
        storage_class: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("seamless:kubernetes:ServiceDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = _labels(svc.name)

        def meta(obj_name: str) -> ObjectMetaArgsDict:
            return _meta(obj_name, namespace, labels)

        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=meta(svc.name), automount_service_account_token=False, opts=child
        )
        self.config_map = None
        if svc.config_files:
            self.config_map = k8s.core.v1.ConfigMap(
                f"{name}-config",
                metadata=meta(f"{svc.name}-config"),
                data={c.key: c.content for c in svc.config_files},
                opts=child,
            )
        self.secret = None
        if svc.secrets:
            self.secret = k8s.core.v1.Secret(
                f"{name}-secret",
                metadata=meta(f"{svc.name}-secrets"),
                type="Opaque",
                string_data={
                    item.key: credentials.render(item.needs, item.render) for item in svc.secrets
                },
                opts=child,
            )
        secret_name = f"{svc.name}-secrets" if svc.secrets else None
        configmap = f"{svc.name}-config" if svc.config_files else None
        annotations: dict[str, str] = {}
        if svc.metrics_port is not None:
            annotations = {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(svc.metrics_port),
                "prometheus.io/path": svc.metrics_path,
            }
        template: PodTemplateSpecArgsDict = {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": pod_spec(svc, image, secret_name, configmap),
        }
        selector: LabelSelectorArgsDict = {"match_labels": labels}
        if svc.stateful:
            headless: ServiceSpecArgsDict = {
                "cluster_ip": "None",
                "publish_not_ready_addresses": True,
                "selector": labels,
                "ports": service_ports(svc),
            }
            self.headless_service = k8s.core.v1.Service(
                f"{name}-headless", metadata=meta(f"{svc.name}-headless"), spec=headless, opts=child
            )
            stateful_set: StatefulSetSpecArgsDict = {
                "service_name": f"{svc.name}-headless",
                "replicas": svc.replicas,
                "pod_management_policy": "Parallel",
                "selector": selector,
                "template": template,
                "volume_claim_templates": volume_claims(svc, storage_class),
            }
            self.workload = k8s.apps.v1.StatefulSet(
                f"{name}-statefulset", metadata=meta(svc.name), spec=stateful_set, opts=child
            )
        else:
            self.headless_service = None
            deployment: DeploymentSpecArgsDict = {
                "replicas": svc.replicas,
                "selector": selector,
                "template": template,
            }
            self.workload = k8s.apps.v1.Deployment(
                f"{name}-deployment", metadata=meta(svc.name), spec=deployment, opts=child
            )
        service: ServiceSpecArgsDict = {
            "type": "ClusterIP",
            "selector": labels,
            "ports": service_ports(svc),
        }
        self.service = k8s.core.v1.Service(
            f"{name}-service", metadata=meta(svc.name), spec=service, opts=child
        )
        self.pdb = None
        if svc.replicas > 1:
            budget: PodDisruptionBudgetSpecArgsDict = {
                "min_available": svc.replicas - 1,
                "selector": selector,
            }
            self.pdb = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb", metadata=meta(svc.name), spec=budget, opts=child
            )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=meta(f"{svc.name}-allow"),
            spec=network_policy,
            opts=child,
        )
        self.register_outputs(
            {"service": self.service.metadata.apply(lambda m: m.name if m else None)}
        )


def network_policy_spec(svc: ServiceSpec, catalog: Catalog) -> NetworkPolicySpecArgsDict:
    """Ingress from the services that dial this one (and Prometheus on the metrics port);
    egress to the services this one dials, plus DNS; peers of a cluster talk to each other."""
    ports = _tcp([p.port for p in svc.ports])
    ingress: list[NetworkPolicyIngressRuleArgsDict] = []
    clients = list(catalog.clients_of(svc.name))
    if svc.replicas > 1 and svc.stateful:
        clients.append(svc.name)  # cluster peers (the KRaft quorum, replication)
    clients.extend(job.name for job in svc.jobs)  # its one-shot bootstrap jobs
    for client in clients:
        ingress.append(
            {"from_": [{"pod_selector": {"match_labels": {NAME_LABEL: client}}}], "ports": ports}
        )
    if svc.metrics_port is not None:
        ingress.append(
            {
                "from_": [
                    {
                        "namespace_selector": {
                            "match_labels": {"kubernetes.io/metadata.name": PROMETHEUS_NAMESPACE}
                        }
                    }
                ],
                "ports": _tcp([svc.metrics_port]),
            }
        )
    egress: list[NetworkPolicyEgressRuleArgsDict] = [dns_egress()]
    dials = list(svc.connects_to)
    if svc.replicas > 1 and svc.stateful:
        dials.append(svc.name)
    for dep in dials:
        egress.append(_to_service(dep, [p.port for p in catalog.get(dep).ports]))
    for port in svc.external_ports:
        egress.append({"to": [{"ip_block": {"cidr": "0.0.0.0/0"}}], "ports": _tcp([port])})
    return {
        "pod_selector": {"match_labels": _labels(svc.name)},
        "policy_types": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }


def _to_service(name: str, ports: list[int]) -> NetworkPolicyEgressRuleArgsDict:
    return {"to": [{"pod_selector": {"match_labels": {NAME_LABEL: name}}}], "ports": _tcp(ports)}


class KubernetesPlatform(pulumi.ComponentResource):
    """Namespace + default-deny policy + one ServiceDeployment per catalog entry."""

    namespace: k8s.core.v1.Namespace
    default_deny: k8s.networking.v1.NetworkPolicy
    built_images: dict[str, docker.Image]  # by service: those built from a Dockerfile
    services: dict[str, ServiceDeployment]
    jobs: dict[str, ServiceJob]
    observability: dict[str, k8s.core.v1.ConfigMap]

    def __init__(
        self,
        name: str,
        catalog: Catalog,
        credentials: Credentials,
        assets: ObservabilityAssets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("seamless:kubernetes:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = catalog.config
        ns_name = config.namespace
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": ns_name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    # warn too, so a workload whose template breaks `restricted` is named
                    # when it is applied, not only when its pods are refused
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/warn-version": "latest",
                    "app.kubernetes.io/part-of": "seamless-stack",
                },
            },
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        deny_all: NetworkPolicySpecArgsDict = {
            "pod_selector": {},
            "policy_types": ["Ingress", "Egress"],
        }
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={"name": "default-deny-all", "namespace": ns_name},
            spec=deny_all,
            opts=in_ns,
        )
        self.built_images = {}
        images: dict[str, pulumi.Input[str]] = {svc.name: svc.image for svc in catalog}
        for svc in catalog:
            if svc.build_context is not None:
                built = docker.Image(
                    f"{name}-{svc.name}-image",
                    image_name=svc.image,
                    build={
                        "context": svc.build_context,
                        "dockerfile": f"{svc.build_context}/Dockerfile",
                        "platform": "linux/amd64",
                    },
                    skip_push=not config.push_coordinator_image,
                    opts=child,
                )
                self.built_images[svc.name] = built
                images[svc.name] = built.repo_digest.apply(lambda d, ref=svc.image: d or ref)
        self.services = {
            svc.name: ServiceDeployment(
                f"{name}-{svc.name}",
                svc,
                ns_name,
                credentials,
                images[svc.name],
                network_policy=network_policy_spec(svc, catalog),
                storage_class=config.storage_class,
                opts=in_ns,
            )
            for svc in catalog
        }
        self.jobs = {
            job.name: ServiceJob(
                f"{name}-{job.name}",
                job,
                svc,
                ns_name,
                credentials,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.namespace, self.services[svc.name].workload]
                ),
            )
            for svc in catalog
            for job in svc.jobs
        }
        self.observability = {
            "scrape": k8s.core.v1.ConfigMap(
                f"{name}-prometheus-scrape",
                metadata={"name": "seamless-prometheus-scrape", "namespace": ns_name},
                data={"seamless-scrape.yml": assets.scrape_config_yaml},
                opts=in_ns,
            ),
            "alerts": k8s.core.v1.ConfigMap(
                f"{name}-prometheus-rules",
                metadata={
                    "name": "seamless-alert-rules",
                    "namespace": ns_name,
                    "labels": {"prometheus_rule": "1"},
                },
                data={"seamless-alerts.yml": assets.alert_rules_yaml},
                opts=in_ns,
            ),
            "dashboards": k8s.core.v1.ConfigMap(
                f"{name}-grafana-dashboards",
                metadata={
                    "name": "seamless-grafana-dashboards",
                    "namespace": ns_name,
                    "labels": {"grafana_dashboard": "1"},
                },
                data=dict(assets.dashboards_json),
                opts=in_ns,
            ),
        }
        self.register_outputs({"namespace": ns_name, "services": sorted(self.services)})

    def workloads(self, service: str) -> list[pulumi.Resource]:
        return [self.services[service].workload]


def dns_egress() -> NetworkPolicyEgressRuleArgsDict:
    return {
        "to": [
            {
                "namespace_selector": {
                    "match_labels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }


def job_container(job: JobSpec, secret_name: str | None) -> ContainerArgsDict:
    mounts: list[VolumeMountArgsDict] = [
        {"name": "config", "mount_path": c.path, "sub_path": c.key, "read_only": True}
        for c in job.config_files
    ]
    mounts += [
        {"name": "secrets", "mount_path": s.file, "sub_path": s.key, "read_only": True}
        for s in job.secrets
        if s.file is not None
    ]
    mounts.append({"name": "scratch", "mount_path": "/tmp"})
    env: list[EnvVarArgsDict] = [{"name": k, "value": v} for k, v in sorted(job.env.items())]
    env += [
        {"name": s.env, "value_from": {"secret_key_ref": {"name": secret_name, "key": s.key}}}
        for s in job.secrets
        if s.env is not None
    ]
    return {
        "name": job.name,
        "image": job.image,
        "image_pull_policy": "Always",
        "command": list(job.command),
        "volume_mounts": mounts,
        "env": env,
        "resources": resources_manifest(job.resources),
        "security_context": container_security(job.run_as_user, read_only_root=True),
    }


class ServiceJob(pulumi.ComponentResource):
    """A catalog service's one-shot job: its files, secrets, a NetworkPolicy letting it reach
    only that service (and DNS), and the Job itself (the provider awaits its completion)."""

    config_map: k8s.core.v1.ConfigMap | None
    secret: k8s.core.v1.Secret | None
    network_policy: k8s.networking.v1.NetworkPolicy
    job: k8s.batch.v1.Job

    def __init__(
        self,
        name: str,
        job: JobSpec,
        target: ServiceSpec,
        namespace: str,
        credentials: Credentials,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("seamless:kubernetes:ServiceJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = _labels(job.name)

        def meta(obj_name: str) -> ObjectMetaArgsDict:
            return _meta(obj_name, namespace, labels)

        volumes: list[VolumeArgsDict] = [{"name": "scratch", "empty_dir": {"size_limit": "64Mi"}}]
        self.config_map = None
        if job.config_files:
            self.config_map = k8s.core.v1.ConfigMap(
                f"{name}-config",
                metadata=meta(f"{job.name}-config"),
                data={c.key: c.content for c in job.config_files},
                opts=child,
            )
            volumes.append(
                {
                    "name": "config",
                    "config_map": {"name": f"{job.name}-config", "default_mode": 0o555},
                }
            )
        self.secret = None
        secret_name = f"{job.name}-secrets" if job.secrets else None
        if job.secrets:
            self.secret = k8s.core.v1.Secret(
                f"{name}-secret",
                metadata=meta(f"{job.name}-secrets"),
                type="Opaque",
                string_data={s.key: credentials.render(s.needs, s.render) for s in job.secrets},
                opts=child,
            )
            volumes.append(
                {"name": "secrets", "secret": {"secret_name": secret_name, "default_mode": 0o440}}
            )
        # It reaches only the service it bootstraps (and DNS); nothing dials it.
        policy: NetworkPolicySpecArgsDict = {
            "pod_selector": {"match_labels": {NAME_LABEL: job.name}},
            "policy_types": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [_to_service(target.name, [p.port for p in target.ports]), dns_egress()],
        }
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol", metadata=meta(f"{job.name}-allow"), spec=policy, opts=child
        )
        depends = [r for r in (self.config_map, self.secret, self.network_policy) if r]
        spec: JobSpecArgsDict = {
            "backoff_limit": 10,
            "ttl_seconds_after_finished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restart_policy": "OnFailure",
                    "automount_service_account_token": False,
                    "service_account_name": target.name,
                    "security_context": {
                        "run_as_non_root": True,
                        "seccomp_profile": {"type": "RuntimeDefault"},
                    },
                    "containers": [job_container(job, secret_name)],
                    "volumes": volumes,
                },
            },
        }
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=meta(job.name),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.register_outputs({"job": job.name})
