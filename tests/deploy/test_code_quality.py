"""The code stays ruff clean and keeps its layering (SPEC §8)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "fulcrum_sync"


def test_ruff_is_clean():
    dirs = [d for d in ("fulcrum_sync", "tests", "scripts", "benchmarks") if (ROOT / d).is_dir()]
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *dirs],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def test_patterns_and_domain_import_neither_store_nor_cli():
    files = [*_modules("domain"), *_modules("patterns")]
    for path in files:
        bad = {
            m
            for m in _imports(path)
            if m.startswith(
                (
                    "fulcrum_sync.store",
                    "fulcrum_sync.cli",
                    "fulcrum_sync.render",
                    "fulcrum_sync.services",
                    "fulcrum_sync.sources",
                    "fulcrum_sync.sinks",
                )
            )
        }
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_services_never_import_the_cli_or_print():
    for path in _modules("services"):
        bad = {
            m for m in _imports(path) if m.startswith(("fulcrum_sync.cli", "fulcrum_sync.render"))
        }
        assert not bad, f"{path.name} imports {sorted(bad)}"
        tree = ast.parse(path.read_text())
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        ]
        assert not calls, f"{path.name} prints"


def test_only_the_cli_imports_render():
    for folder in ("services", "store", "sources", "sinks", "patterns", "domain"):
        for path in _modules(folder):
            bad = {m for m in _imports(path) if m.startswith("fulcrum_sync.render")}
            assert not bad, f"{path} imports {sorted(bad)}"
    for path in [*_modules("render")]:
        bad = {m for m in _imports(path) if m.startswith(("fulcrum_sync.cli",))}
        assert not bad, f"{path} imports {sorted(bad)}"


def test_no_module_is_over_400_lines():
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"


def test_the_sync_service_imports_neither_pandas_nor_the_patterns():
    """A sync without patterns (every cron job with --no-patterns) never loads pandas: it
    costs about 0.3 s and 70 MB of every process start (issue 19)."""
    probe = (
        "import sys, fulcrum_sync.services.sync, fulcrum_sync.cli.sync; "
        "print(sorted(m for m in ('pandas', 'statsmodels', 'fulcrum_sync.patterns') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
