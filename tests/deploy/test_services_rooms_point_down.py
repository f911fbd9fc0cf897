"""The rooms of ``services/`` stand on floors, and a room imports only rooms on lower floors
(SPEC §8): nothing points back up, and no package module takes part in an import circle.

Every import counts, the ones made inside a function and under ``TYPE_CHECKING`` too: a
lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "fulcrum_sync"

#: Each room of services/ (a folder, or deps.py) and its floor; a room imports only rooms on
#: a lower floor. A new room fails the test until it is given a floor here.
FLOORS = {
    "deps": 1,  # what services need from outside: settings, engine, source, sinks
    "jobs": 1,  # what every job shares: run records, claims, leases, workers, run keys
    "contexts": 1,  # the catalog, discovery, the one selection of contexts
    "patterns": 2,  # the pattern step and the ``patterns`` command
    "cache": 2,  # the cache loads and their destinations
    "run": 3,  # the sync run, its catch-up, the stretches backfill shares
    "operate": 4,  # what an operator runs: state, status, doctor, verify, retention...
    "backfill": 4,  # a range of periods, resumable and shardable
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path, package: str) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def _imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules ``path`` (module ``name``) imports: ``from a import b`` names
    ``a.b`` where that is a module, else ``a``."""
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                whole = f"{base}.{alias.name}"
                if whole in known:
                    out.add(whole)
                elif base in known:
                    out.add(base)
    return out


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package modules it imports (itself left out)."""
    modules = _modules(root, package)
    known = set(modules)
    return {m: _imported(p, m, known) - {m} for m, p in modules.items()}


def _room(module: str, package: str) -> str | None:
    """The services room of ``module`` (``jobs`` for ``<package>.services.jobs.runner``)."""
    prefix = f"{package}.services."
    return module[len(prefix) :].split(".")[0] if module.startswith(prefix) else None


def arrows_back_up(root: Path, package: str, floors: dict[str, int]) -> list[str]:
    """Each import from a services room to a room on its own floor or a higher one."""
    bad = []
    for module, imported in sorted(import_graph(root, package).items()):
        room = _room(module, package)
        if room is None:
            continue
        for target in sorted(imported):
            other = _room(target, package)
            if other is None or other == room:
                continue
            if floors[other] >= floors[room]:
                bad.append(f"{module} (floor {floors[room]}) imports {target} ({floors[other]})")
    return bad


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected parts of two modules or more
    (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_services_room_has_a_floor() -> None:
    services = PACKAGE / "services"
    rooms = {p.stem if p.is_file() else p.name for p in services.iterdir()}
    rooms = {r for r in rooms if not r.startswith(("_", "."))}
    assert rooms == set(FLOORS), "give each room of services/ a floor in FLOORS"


def test_no_services_room_imports_one_above_or_beside_it() -> None:
    assert arrows_back_up(ROOT, "fulcrum_sync", FLOORS) == []


def test_no_module_of_the_package_is_in_an_import_circle() -> None:
    assert circles(import_graph(ROOT, "fulcrum_sync")) == []


@pytest.fixture
def house(tmp_path: Path) -> Path:
    """A package with a jobs/ room under a run/ room, written out for the checks above."""
    services = tmp_path / "pkg" / "services"
    for folder in ("jobs", "run"):
        (services / folder).mkdir(parents=True)
        (services / folder / "__init__.py").write_text("")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (services / "__init__.py").write_text("")
    (services / "jobs" / "runner.py").write_text("X = 1\n")
    (services / "run" / "sync.py").write_text("from pkg.services.jobs.runner import X\n")
    return tmp_path


def test_the_floor_check_finds_an_arrow_back_up_even_a_lazy_one(house: Path) -> None:
    floors = {"jobs": 1, "run": 2}
    assert arrows_back_up(house, "pkg", floors) == []
    (house / "pkg" / "services" / "jobs" / "keys.py").write_text(
        "def f():\n    from pkg.services.run import sync\n"
    )
    assert arrows_back_up(house, "pkg", floors) == [
        "pkg.services.jobs.keys (floor 1) imports pkg.services.run.sync (2)"
    ]
    assert arrows_back_up(house, "pkg", {"jobs": 1, "run": 1}) != []  # beside counts too


def test_the_circle_check_finds_a_circle_through_a_type_checking_import(house: Path) -> None:
    assert circles(import_graph(house, "pkg")) == []
    (house / "pkg" / "services" / "jobs" / "runner.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..run.sync import X\n"
    )
    assert circles(import_graph(house, "pkg")) == [
        ["pkg.services.jobs.runner", "pkg.services.run.sync"]
    ]
