"""Profile rules at preview time: the SDK's own `config validate` checks, run offline on the
stack's `seamless` section, so `pulumi preview` fails with the same message as
`seamless config validate` (e.g. `Prod profile requires seamless.coordinator_url`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from seamless.config.service_validation import SERVICE_TARGETS, validate_service
from seamless.config.validation import CheckResult, first_error_message, validate_seamless

from infra.catalog import Catalog, qmtl_config_document
from infra.stack_config import PROJECT, StackConfig


class ProfileError(ValueError):
    """The stack's seamless section fails the SDK's checks for its profile."""


@dataclass(frozen=True)
class ProfileReport:
    results: tuple[CheckResult, ...]

    @property
    def warnings(self) -> list[str]:
        return [f"{r.target}.{r.check}: {r.hint}" for r in self.results if r.severity == "WARN"]


def check_profile(config: StackConfig) -> ProfileReport:
    """Run the SDK's validators offline (nothing is contacted at preview time)."""
    results = validate_seamless(
        config.seamless, offline=True, env=None, source=f"stack config ({PROJECT}:seamless)"
    )
    message = first_error_message(results)
    if message is not None:
        raise ProfileError(message)
    # Connectivity checks are skipped offline; that is expected, not worth a warning.
    kept = tuple(r for r in results if "not contacted (offline)" not in r.hint)
    return ProfileReport(results=kept)


def check_service_configs(catalog: Catalog) -> None:
    """`seamless config validate --target gateway|dagmanager|worldservice --offline` on the
    config.yml the bundle renders for each QMTL service it runs, so a malformed broker list
    or topic prefix fails the preview instead of the service's start.

    Credentials are not known at preview (they are generated); a placeholder stands in for
    each, which is enough for the offline checks (forms of DSNs, brokers, topics, ports).
    """
    placeholders: defaultdict[str, str] = defaultdict(lambda: "preview-placeholder")
    in_memory = catalog.config.profile != "prod"
    for target in SERVICE_TARGETS:
        if target not in catalog:
            continue
        document = qmtl_config_document(
            catalog.config, catalog.endpoints, target, placeholders, in_memory=in_memory
        )
        results = validate_service(
            target, document, offline=True, source=f"the {target} config.yml this stack renders"
        )
        errors = [r.hint for r in results if r.severity == "ERROR"]
        if errors:
            raise ProfileError(errors[0])  # the hint names the key, its source and the form
