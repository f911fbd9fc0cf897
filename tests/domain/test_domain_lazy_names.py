"""``fulcrum_sync.domain`` loads each name with its module (issue 26): every exported name
resolves to its home module's object, the name table agrees with the typed imports, and a
name the package does not export is an error."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import fulcrum_sync.domain as domain

INIT = Path(domain.__file__)


def _typed_imports() -> dict[str, str]:
    """name -> module, from the ``if TYPE_CHECKING:`` imports of domain/__init__.py."""
    found: dict[str, str] = {}
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                for alias in stmt.names:
                    found[alias.name] = stmt.module.rsplit(".", 1)[1]
    return found


def test_the_name_table_the_typed_imports_and_all_agree() -> None:
    table = {name: module for module, names in domain.HOMES.items() for name in names.split()}
    assert table == _typed_imports()
    assert sorted(domain.__all__) == sorted(table)


@pytest.mark.parametrize("name", sorted(domain.__all__))
def test_every_name_is_its_home_modules_object(name: str) -> None:
    home = next(m for m, names in domain.HOMES.items() if name in names.split())
    module = importlib.import_module(f"fulcrum_sync.domain.{home}")
    assert getattr(domain, name) is getattr(module, name)


def test_an_unknown_name_is_an_error() -> None:
    with pytest.raises(ImportError):
        exec("from fulcrum_sync.domain import NoSuchName", {})
    with pytest.raises(AttributeError):
        _ = domain.NoSuchName  # type: ignore[attr-defined]


def test_one_name_loads_its_module_only() -> None:
    code = (
        "import sys\n"
        "from fulcrum_sync.domain import InputError\n"
        "print(sorted(m for m in sys.modules if m.startswith('fulcrum_sync.domain.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["['fulcrum_sync.domain.errors']"]
