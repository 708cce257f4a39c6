"""The whole Pulumi program as one function: `/__main__.py` calls it for the CLI, the
Automation API passes it as an inline program.

The stack config is read and checked once, here, into a typed `StackConfig`; nothing below
reads `pulumi.Config`. A user mistake ends the preview with one clear line (no trace).
"""

from __future__ import annotations

import pulumi

from infra.profile import ProfileError, check_profile
from infra.program import SeamlessBundle, deploy
from infra.stack_config import StackConfigError, load_stack_config


def main() -> SeamlessBundle:
    try:
        config = load_stack_config()
        report = check_profile(config)
    except (StackConfigError, ProfileError) as exc:
        raise pulumi.RunError(str(exc)) from None

    for warning in (*config.warnings, *report.warnings):
        pulumi.log.warn(warning)

    try:
        return deploy(config)
    except (StackConfigError, ProfileError) as exc:
        raise pulumi.RunError(str(exc)) from None
