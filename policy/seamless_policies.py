"""The Seamless bundle's policy rules as plain functions on resource inputs.

Each resource rule takes `(resource_type, props, urn)` (props as the engine sees them:
camelCase inputs) and returns the violations it found, one message each; the stack rule
takes every resource. `__main__.py` wraps them into a pulumi-policy PolicyPack, and the
unit tests call them directly on good and bad resources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

K8S_WORKLOADS = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:batch/v1:Job",
        "kubernetes:batch/v1:CronJob",
        "kubernetes:core/v1:Pod",
    }
)
K8S_LONG_RUNNING = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
    }
)
DOCKER_CONTAINER = "docker:index/container:Container"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
AWS_BUCKETS = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
AWS_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
AWS_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
AWS_BUCKET_ACL = "aws:s3/bucketAclV2:BucketAclV2"
MINIO_BUCKET = "minio:index/s3Bucket:S3Bucket"
PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "public", "public-write", "download"})

# Env var names that carry secrets; their values must come from a Secret (valueFrom) on
# Kubernetes or from a file on Docker.
_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|_AUTH$)"
)
# ...except the *_FILE convention, whose value is only a path.
_FILE_REF = re.compile(r"_FILE$")
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)


def stack_of(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::...` -> `<stack>`."""
    parts = urn.split(":")
    return parts[2] if len(parts) > 2 and urn.startswith("urn:pulumi:") else ""


def is_prod(urn: str) -> bool:
    stack = stack_of(urn)
    return stack == "prod" or stack.startswith("prod-") or stack.endswith("-prod")


def _pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = props.get("spec") or {}
    if resource_type == "kubernetes:core/v1:Pod":
        return spec
    if resource_type == "kubernetes:batch/v1:CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def _containers(resource_type: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    pod = _pod_spec(resource_type, props)
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _docker_env(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for entry in props.get("envs") or []:
        name, _, value = str(entry).partition("=")
        out.append((name, value))
    return out


# --- resource rules ------------------------------------------------------------------------


def no_public_bucket(resource_type: str, props: Mapping[str, Any], urn: str = "") -> list[str]:
    if resource_type in AWS_BUCKETS | {MINIO_BUCKET}:
        acl = str(props.get("acl") or "private")
        if acl in PUBLIC_ACLS:
            return [f"bucket ACL {acl!r} makes the bucket public; use 'private'"]
    if resource_type == AWS_BUCKET_ACL and str(props.get("acl") or "") in PUBLIC_ACLS:
        return [f"bucket ACL {props.get('acl')!r} makes the bucket public"]
    if resource_type == AWS_PUBLIC_ACCESS_BLOCK:
        flags = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        off = [f for f in flags if props.get(f) is not True]
        if off:
            return [f"public access block leaves {', '.join(off)} off; all four must be true"]
    if resource_type == AWS_BUCKET_POLICY:
        policy = props.get("policy")
        text = policy if isinstance(policy, str) else str(policy)
        if re.search(r'"Principal"\s*:\s*("\*"|\{\s*"AWS"\s*:\s*"\*"\s*\})', text):
            return ["bucket policy grants access to Principal '*'"]
    return []


def limits_on_every_container(
    resource_type: str, props: Mapping[str, Any], urn: str = ""
) -> list[str]:
    out: list[str] = []
    if resource_type in K8S_WORKLOADS:
        for c in _containers(resource_type, props):
            limits = (c.get("resources") or {}).get("limits") or {}
            missing = [k for k in ("cpu", "memory") if not limits.get(k)]
            if missing:
                out.append(f"container {c.get('name')!r} has no {' / '.join(missing)} limit")
    elif resource_type == DOCKER_CONTAINER:
        if not props.get("memory"):
            out.append(f"container {props.get('name')!r} has no memory limit")
        if not (props.get("cpus") or props.get("cpuQuota")):
            out.append(f"container {props.get('name')!r} has no CPU limit (cpus)")
    return out


def _image_tag(image: str) -> str | None:
    if "@sha256:" in image:
        return "digest"
    last = image.rsplit("/", 1)[-1]
    return last.partition(":")[2] or None


def no_latest_in_prod(resource_type: str, props: Mapping[str, Any], urn: str = "") -> list[str]:
    if not is_prod(urn):
        return []
    images: list[str] = []
    if resource_type in K8S_WORKLOADS:
        images = [str(c.get("image") or "") for c in _containers(resource_type, props)]
    elif resource_type == DOCKER_CONTAINER:
        images = [str(props.get("image") or "")]
    elif resource_type == "docker:index/image:Image":
        images = [str(props.get("imageName") or "")]
    out = []
    for image in images:
        if not image:
            continue  # unknown at preview (computed); checked on update
        tag = _image_tag(image)
        if tag is None or tag == "latest":
            out.append(f"image {image!r} is not pinned (':latest' or no tag) in prod")
    return out


def _secretish(name: str, value: str) -> bool:
    if _FILE_REF.search(name):
        return False
    return bool(_SECRET_NAME.search(name.upper())) or bool(_URL_WITH_PASSWORD.search(value))


def no_plaintext_secret_in_env(
    resource_type: str, props: Mapping[str, Any], urn: str = ""
) -> list[str]:
    out = []
    if resource_type in K8S_WORKLOADS:
        for c in _containers(resource_type, props):
            for env in c.get("env") or []:
                if "value" in env and _secretish(str(env.get("name")), str(env.get("value"))):
                    out.append(
                        f"container {c.get('name')!r} env {env.get('name')!r} holds a secret in "
                        "plain text; use valueFrom.secretKeyRef"
                    )
    elif resource_type == DOCKER_CONTAINER:
        for name, value in _docker_env(props):
            if value and _secretish(name, value):
                out.append(
                    f"container {props.get('name')!r} env {name!r} holds a secret in plain text; "
                    "upload it as a file"
                )
    return out


def probes_present(resource_type: str, props: Mapping[str, Any], urn: str = "") -> list[str]:
    out = []
    if resource_type in K8S_LONG_RUNNING:
        for c in (_pod_spec(resource_type, props).get("containers")) or []:
            missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
            if missing:
                out.append(f"container {c.get('name')!r} has no {' / '.join(missing)}")
    elif (
        resource_type == DOCKER_CONTAINER
        and props.get("start") is not False
        and not (props.get("attach") and props.get("mustRun") is False)
    ):
        # A container created and never started (the dev stack's files carriers) runs
        # nothing to probe; one run to completion (a one-shot job, like a Kubernetes Job)
        # is judged by its exit code.
        tests = (props.get("healthcheck") or {}).get("tests") or []
        if not tests or tests == ["NONE"]:
            out.append(f"container {props.get('name')!r} has no health check")
    return out


RESOURCE_RULES = {
    "no-public-bucket": no_public_bucket,
    "limits-on-every-container": limits_on_every_container,
    "no-latest-in-prod": no_latest_in_prod,
    "no-plaintext-secret-in-env": no_plaintext_secret_in_env,
    "probes-present": probes_present,
}


# --- stack rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StackResource:
    resource_type: str
    props: Mapping[str, Any]
    urn: str


def _selector_covers(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    match = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in match.items()) and not selector.get(
        "matchExpressions"
    )


def network_policy_in_prod(resources: Sequence[StackResource]) -> list[str]:
    """In prod every namespace with workloads has a default-deny NetworkPolicy, and every
    workload's pods are selected by an explicit allow policy."""
    if not any(is_prod(r.urn) for r in resources):
        return []
    policies = [r for r in resources if r.resource_type == NETWORK_POLICY]
    out = []
    for r in resources:
        if r.resource_type not in K8S_WORKLOADS:
            continue
        meta = r.props.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        in_ns = [
            p
            for p in policies
            if ((p.props.get("metadata") or {}).get("namespace") or "default") == ns
        ]
        deny = [
            p
            for p in in_ns
            if not ((p.props.get("spec") or {}).get("podSelector") or {}).get("matchLabels")
            and set((p.props.get("spec") or {}).get("policyTypes") or []) >= {"Ingress", "Egress"}
            and not (p.props.get("spec") or {}).get("ingress")
            and not (p.props.get("spec") or {}).get("egress")
        ]
        if not deny:
            out.append(
                f"namespace {ns!r} has no default-deny NetworkPolicy "
                f"(workload {meta.get('name')!r})"
            )
        template_labels = (
            ((r.props.get("spec") or {}).get("template") or {}).get("metadata") or {}
        ).get("labels") or {}
        allows = [
            p
            for p in in_ns
            if p not in deny
            and _selector_covers(
                (p.props.get("spec") or {}).get("podSelector") or {}, template_labels
            )
        ]
        if not allows:
            out.append(
                f"workload {meta.get('name')!r} in {ns!r} has no NetworkPolicy selecting its pods"
            )
    return out


def bucket_has_public_access_block(resources: Sequence[StackResource]) -> list[str]:
    buckets = [r for r in resources if r.resource_type in AWS_BUCKETS]
    blocks = [r for r in resources if r.resource_type == AWS_PUBLIC_ACCESS_BLOCK]
    if len(blocks) < len(buckets):
        return [f"{len(buckets)} S3 bucket(s) but only {len(blocks)} public access block(s)"]
    return []


STACK_RULES = {
    "network-policy-in-prod": network_policy_in_prod,
    "bucket-has-public-access-block": bucket_has_public_access_block,
}


def check_all(resources: Iterable[StackResource]) -> dict[str, list[str]]:
    """Every rule over a list of resources (what the pack would report), by rule name."""
    items = list(resources)
    report: dict[str, list[str]] = {}
    for name, rule in RESOURCE_RULES.items():
        found = [m for r in items for m in rule(r.resource_type, r.props, r.urn)]
        if found:
            report[name] = found
    for name, stack_rule in STACK_RULES.items():
        found = stack_rule(items)
        if found:
            report[name] = found
    return report
