"""The Seamless policy pack: `pulumi preview --policy-pack policy`.

The rules live in `seamless_policies.py` as plain functions (unit-tested directly); this
module only wraps them into pulumi-policy resource and stack validation policies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from seamless_policies import RESOURCE_RULES, STACK_RULES, StackResource

DESCRIPTIONS = {
    "no-public-bucket": "No bucket is public: private ACLs, all four S3 public access blocks on.",
    "limits-on-every-container": "Every container has CPU and memory limits.",
    "no-latest-in-prod": "Prod images are pinned: no ':latest' and no untagged image.",
    "no-plaintext-secret-in-env": "No secret in a plain env var: use Secrets (k8s) or files.",
    "probes-present": "Every long-running container has readiness and liveness checks.",
    "network-policy-in-prod": "Prod namespaces deny by default and allow along real edges.",
    "bucket-has-public-access-block": "Every S3 bucket has a public access block.",
}


def _resource_policy(
    name: str, rule: Callable[[str, Mapping[str, Any], str], list[str]]
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props, args.urn):
            report_violation(message, args.urn)

    return ResourceValidationPolicy(
        name=name,
        description=DESCRIPTIONS[name],
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=validate,
    )


def _stack_policy(
    name: str, rule: Callable[[list[StackResource]], list[str]]
) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [StackResource(r.resource_type, r.props, r.urn) for r in args.resources]
        for message in rule(resources):
            report_violation(message, None)

    return StackValidationPolicy(
        name=name,
        description=DESCRIPTIONS[name],
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=validate,
    )


PolicyPack(
    name="seamless-stack-policies",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *(_resource_policy(n, r) for n, r in RESOURCE_RULES.items()),
        *(_stack_policy(n, r) for n, r in STACK_RULES.items()),
    ],
)
