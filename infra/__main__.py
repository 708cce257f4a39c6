"""Pulumi entry point: `pulumi up --stack dev|prod`.

The stack config is read and checked once, here, into a typed `StackConfig`; nothing below
reads `pulumi.Config`. A user mistake ends the preview with one clear line (no trace).
"""

from __future__ import annotations

import pulumi

from infra.profile import ProfileError, check_profile
from infra.program import deploy
from infra.stack_config import StackConfigError, load_stack_config

try:
    config = load_stack_config()
    report = check_profile(config)
except (StackConfigError, ProfileError) as exc:
    raise pulumi.RunError(str(exc)) from None

for warning in (*config.warnings, *report.warnings):
    pulumi.log.warn(warning)

try:
    bundle = deploy(config)
except ProfileError as exc:
    raise pulumi.RunError(str(exc)) from None
