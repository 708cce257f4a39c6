"""tests/infra: the policy pack's rules are importable as `seamless_policies` (as the pack
itself imports them when Pulumi runs it from policy/)."""

from __future__ import annotations

import sys
from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))
