"""The package's public API (`seamless/__init__.py`): every exported name resolves to the
object its module defines, type checkers see the same names, and importing the package
alone loads none of the data path."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import seamless

pytestmark = pytest.mark.unit

INIT = Path(seamless.__file__)


def _type_checking_reexports() -> dict[str, str]:
    tree = ast.parse(INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    found: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name} is not re-exported as itself"
            found[alias.name] = node.module
    return found


def test_every_public_name_resolves_to_its_module_object() -> None:
    assert seamless.__all__ == sorted(seamless._EXPORTS)
    for name, module in seamless._EXPORTS.items():
        assert getattr(seamless, name) is getattr(importlib.import_module(module), name), name


def test_type_checkers_see_the_same_names_from_the_same_modules() -> None:
    assert _type_checking_reexports() == seamless._EXPORTS


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'provider_factory'"):
        _ = seamless.provider_factory  # type: ignore[attr-defined]


def test_importing_the_package_loads_none_of_the_data_path() -> None:
    # A fresh interpreter: this test process has imported everything already.
    heavy = ("polars", "psycopg", "boto3", "httpx")
    probe = f"import sys, seamless; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_every_exception_of_errors_py_is_public() -> None:
    import seamless.errors as errors

    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert defined <= set(seamless.__all__), sorted(defined - set(seamless.__all__))
    assert all(issubclass(getattr(errors, name), errors.SeamlessError) for name in defined)


def test_no_public_exception_is_defined_outside_errors_py() -> None:
    # Private control-flow exceptions (a leading underscore) may live beside their use;
    # a redis-py error subclass stays with the store that raises it.
    allowed = {"NotReplicated"}
    package = INIT.parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "errors.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ClassDef)
                and not node.name.startswith("_")
                and node.name not in allowed
                and any(
                    getattr(base, "id", getattr(base, "attr", "")).endswith(("Error", "Exception"))
                    for base in node.bases
                )
            ):
                offenders.append(f"{path.relative_to(package)}:{node.name}")
    assert offenders == []
