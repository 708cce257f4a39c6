"""The Kubernetes platform (prod): renders the catalog into a namespace.

Per service: a ServiceAccount (no token mounted), a ConfigMap and a Secret for its files,
a Deployment (or a StatefulSet with PVCs for stateful services), a Service, a
PodDisruptionBudget when it runs more than one replica, and a NetworkPolicy that admits
exactly the services the catalog says dial it. The namespace denies all traffic by default
and enforces the `restricted` Pod Security Standard.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.catalog import Catalog, JobSpec, ServiceSpec
from infra.components.identity import Credentials
from infra.observability import ObservabilityAssets

PROMETHEUS_NAMESPACE = "monitoring"  # where the cluster's Prometheus runs (operator default)


def _labels(svc: ServiceSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": svc.name, "app.kubernetes.io/part-of": "seamless-stack"}


def probe_manifest(svc: ServiceSpec, liveness: bool) -> dict[str, Any]:
    probe = svc.liveness if liveness else svc.readiness
    base: dict[str, Any] = {
        "initialDelaySeconds": probe.initial_delay_s,
        "periodSeconds": probe.period_s,
        "timeoutSeconds": probe.timeout_s,
        "failureThreshold": probe.failure_threshold,
    }
    if probe.path is None:
        base["tcpSocket"] = {"port": probe.port}
    else:
        base["httpGet"] = {"path": probe.path, "port": probe.port}
    return base


def container_manifest(
    svc: ServiceSpec, image: pulumi.Input[str], secret_name: str | None, configmap: str | None
) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(svc.env.items())]
    if svc.pod_name_env is not None:
        env.append(
            {"name": svc.pod_name_env, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        )
    for item in svc.secrets:
        if item.env is not None:
            assert secret_name is not None
            env.append(
                {
                    "name": item.env,
                    "valueFrom": {"secretKeyRef": {"name": secret_name, "key": item.key}},
                }
            )
    mounts: list[dict[str, Any]] = []
    for item in svc.secrets:
        if item.file is not None:
            mounts.append(
                {"name": "secrets", "mountPath": item.file, "subPath": item.key, "readOnly": True}
            )
    for cfg in svc.config_files:
        mounts.append(
            {"name": "config", "mountPath": cfg.path, "subPath": cfg.key, "readOnly": True}
        )
    for vol in svc.volumes:
        mounts.append({"name": vol.name, "mountPath": vol.mount_path})
    for i, path in enumerate(svc.scratch_paths):
        mounts.append({"name": f"scratch-{i}", "mountPath": path})
    container: dict[str, Any] = {
        "name": svc.name,
        "image": image,
        "imagePullPolicy": "Always",
        "ports": [{"name": p.name, "containerPort": p.port, "protocol": "TCP"} for p in svc.ports],
        "env": env,
        "volumeMounts": mounts,
        "readinessProbe": probe_manifest(svc, liveness=False),
        "livenessProbe": probe_manifest(svc, liveness=True),
        "resources": {
            "requests": {
                "cpu": svc.resources.cpu_request,
                "memory": f"{svc.resources.memory_request_mi}Mi",
            },
            "limits": {
                "cpu": svc.resources.cpu_limit,
                "memory": f"{svc.resources.memory_limit_mi}Mi",
            },
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": svc.run_as_user,
            "runAsGroup": svc.run_as_user,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": svc.read_only_root,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
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
) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = []
    if secret_name is not None:
        volumes.append(
            {"name": "secrets", "secret": {"secretName": secret_name, "defaultMode": 0o440}}
        )
    if configmap is not None:
        volumes.append({"name": "config", "configMap": {"name": configmap, "defaultMode": 0o555}})
    for i, _ in enumerate(svc.scratch_paths):
        volumes.append({"name": f"scratch-{i}", "emptyDir": {"sizeLimit": "256Mi"}})
    return {
        "serviceAccountName": svc.name,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": svc.run_as_user,
            "fsGroup": svc.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container_manifest(svc, image, secret_name, configmap)],
        "volumes": volumes,
    }


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
        catalog: Catalog,
        namespace: pulumi.Input[str],
        credentials: Credentials,
        image: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("seamless:kubernetes:ServiceDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = _labels(svc)

        def meta(obj_name: str) -> dict[str, Any]:
            return {"name": obj_name, "namespace": namespace, "labels": labels}

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
        template = {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": pod_spec(svc, image, secret_name, configmap),
        }
        selector = {"matchLabels": labels}
        storage_class = catalog.config.storage_class
        if svc.stateful:
            self.headless_service = k8s.core.v1.Service(
                f"{name}-headless",
                metadata=meta(f"{svc.name}-headless"),
                spec={
                    "clusterIP": "None",
                    "publishNotReadyAddresses": True,
                    "selector": labels,
                    "ports": [
                        {"name": p.name, "port": p.port, "targetPort": p.port} for p in svc.ports
                    ],
                },
                opts=child,
            )
            claims = [
                {
                    "metadata": {"name": v.name},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": f"{v.size_gi}Gi"}},
                        **({"storageClassName": storage_class} if storage_class else {}),
                    },
                }
                for v in svc.volumes
            ]
            self.workload = k8s.apps.v1.StatefulSet(
                f"{name}-statefulset",
                metadata=meta(svc.name),
                spec={
                    "serviceName": f"{svc.name}-headless",
                    "replicas": svc.replicas,
                    "podManagementPolicy": "Parallel",
                    "selector": selector,
                    "template": template,
                    "volumeClaimTemplates": claims,
                },
                opts=child,
            )
        else:
            self.headless_service = None
            self.workload = k8s.apps.v1.Deployment(
                f"{name}-deployment",
                metadata=meta(svc.name),
                spec={"replicas": svc.replicas, "selector": selector, "template": template},
                opts=child,
            )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(svc.name),
            spec={
                "type": "ClusterIP",
                "selector": labels,
                "ports": [
                    {"name": p.name, "port": p.port, "targetPort": p.port} for p in svc.ports
                ],
            },
            opts=child,
        )
        self.pdb = None
        if svc.replicas > 1:
            self.pdb = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=meta(svc.name),
                spec={"minAvailable": svc.replicas - 1, "selector": selector},
                opts=child,
            )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=meta(f"{svc.name}-allow"),
            spec=network_policy_spec(svc, catalog),
            opts=child,
        )
        self.register_outputs(
            {"service": self.service.metadata.apply(lambda m: m.name if m else None)}
        )


def network_policy_spec(svc: ServiceSpec, catalog: Catalog) -> dict[str, Any]:
    """Ingress from the services that dial this one (and Prometheus on the metrics port);
    egress to the services this one dials, plus DNS; peers of a cluster talk to each other."""
    labels = _labels(svc)
    ports = [{"port": p.port, "protocol": "TCP"} for p in svc.ports]
    ingress: list[dict[str, Any]] = []
    clients = list(catalog.clients_of(svc.name))
    if svc.replicas > 1 and svc.stateful:
        clients.append(svc.name)  # cluster peers (Redpanda RPC)
    clients.extend(job.name for job in svc.jobs)  # its one-shot bootstrap jobs
    for client in clients:
        ingress.append(
            {
                "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": client}}}],
                "ports": ports,
            }
        )
    if svc.metrics_port is not None:
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": PROMETHEUS_NAMESPACE}
                        }
                    }
                ],
                "ports": [{"port": svc.metrics_port, "protocol": "TCP"}],
            }
        )
    egress: list[dict[str, Any]] = [dns_egress()]
    dials = list(svc.connects_to)
    if svc.replicas > 1 and svc.stateful:
        dials.append(svc.name)
    for dep in dials:
        dep_svc = catalog.get(dep)
        egress.append(
            {
                "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": dep}}}],
                "ports": [{"port": p.port, "protocol": "TCP"} for p in dep_svc.ports],
            }
        )
    for port in svc.external_ports:
        egress.append(
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                "ports": [{"port": port, "protocol": "TCP"}],
            }
        )
    return {
        "podSelector": {"matchLabels": labels},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }


class KubernetesPlatform(pulumi.ComponentResource):
    """Namespace + default-deny policy + one ServiceDeployment per catalog entry."""

    namespace: k8s.core.v1.Namespace
    default_deny: k8s.networking.v1.NetworkPolicy
    coordinator_image: docker.Image | None
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
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={"name": "default-deny-all", "namespace": ns_name},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=in_ns,
        )
        self.coordinator_image = None
        images: dict[str, pulumi.Input[str]] = {svc.name: svc.image for svc in catalog}
        for svc in catalog:
            if svc.build_context is not None:
                self.coordinator_image = docker.Image(
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
                images[svc.name] = self.coordinator_image.repo_digest.apply(
                    lambda d, ref=svc.image: d or ref
                )
        self.services = {
            svc.name: ServiceDeployment(
                f"{name}-{svc.name}",
                svc,
                catalog,
                ns_name,
                credentials,
                images[svc.name],
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


def dns_egress() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }


def job_container(job: JobSpec, secret_name: str | None) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": c.path, "subPath": c.key, "readOnly": True}
        for c in job.config_files
    ]
    mounts += [
        {"name": "secrets", "mountPath": s.file, "subPath": s.key, "readOnly": True}
        for s in job.secrets
        if s.file is not None
    ]
    mounts.append({"name": "scratch", "mountPath": "/tmp"})
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(job.env.items())]
    env += [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": s.key}}}
        for s in job.secrets
        if s.env is not None
    ]
    return {
        "name": job.name,
        "image": job.image,
        "imagePullPolicy": "Always",
        "command": list(job.command),
        "volumeMounts": mounts,
        "env": env,
        "resources": {
            "requests": {
                "cpu": job.resources.cpu_request,
                "memory": f"{job.resources.memory_request_mi}Mi",
            },
            "limits": {
                "cpu": job.resources.cpu_limit,
                "memory": f"{job.resources.memory_limit_mi}Mi",
            },
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": job.run_as_user,
            "runAsGroup": job.run_as_user,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
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
        labels = {"app.kubernetes.io/name": job.name, "app.kubernetes.io/part-of": "seamless-stack"}

        def meta(obj_name: str) -> dict[str, Any]:
            return {"name": obj_name, "namespace": namespace, "labels": labels}

        volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}]
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
                    "configMap": {"name": f"{job.name}-config", "defaultMode": 0o555},
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
                {"name": "secrets", "secret": {"secretName": secret_name, "defaultMode": 0o440}}
            )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=meta(f"{job.name}-allow"),
            spec={
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": job.name}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],
                "egress": [
                    {
                        "to": [
                            {
                                "podSelector": {
                                    "matchLabels": {"app.kubernetes.io/name": target.name}
                                }
                            }
                        ],
                        "ports": [{"port": p.port, "protocol": "TCP"} for p in target.ports],
                    },
                    dns_egress(),
                ],
            },
            opts=child,
        )
        depends = [r for r in (self.config_map, self.secret, self.network_policy) if r]
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=meta(job.name),
            spec={
                "backoffLimit": 10,
                "ttlSecondsAfterFinished": 3600,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": False,
                        "serviceAccountName": target.name,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [job_container(job, secret_name)],
                        "volumes": volumes,
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.register_outputs({"job": job.name})
