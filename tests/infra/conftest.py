"""tests/infra: the policy pack's rules are importable as `seamless_policies` (as the pack
itself imports them when Pulumi runs it from policy/)."""

from __future__ import annotations

import sys
from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))


def _pkg_resources_for_parliament() -> None:
    """parliament 1.6.4 still imports `pkg_resources`, which setuptools >= 81 no longer
    ships. It only calls `resource_filename`; provide exactly that (files inside the
    installed package), so the real linter runs unchanged."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import importlib.util
        import types

        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, resource: str) -> str:
            spec = importlib.util.find_spec(package)
            assert spec is not None and spec.origin is not None
            return str(Path(spec.origin).parent / resource)

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim


_pkg_resources_for_parliament()
