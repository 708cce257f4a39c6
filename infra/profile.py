"""Profile rules at preview time: the SDK's own `config validate` checks, run offline on the
stack's `seamless` section, so `pulumi preview` fails with the same message as
`seamless config validate` (e.g. `Prod profile requires seamless.coordinator_url`)."""

from __future__ import annotations

from dataclasses import dataclass

from seamless.validation import CheckResult, first_error_message, validate_seamless

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
