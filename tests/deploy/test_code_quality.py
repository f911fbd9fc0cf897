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


def _function_lengths(path: Path) -> list[tuple[int, str]]:
    """(lines, name) of every function in ``path``, decorators and nested functions counted."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out.append((node.end_lineno - first + 1, node.name))  # type: ignore[operator]
    return out


def test_no_function_in_services_store_or_sources_is_over_80_lines():
    long = [
        f"{path.relative_to(ROOT)}:{name} has {lines} lines"
        for folder in ("services", "store", "sources")
        for path in _modules(folder)
        if "migrations" not in path.parts
        for lines, name in _function_lengths(path)
        if lines > 80
    ]
    assert not long, "; ".join(long)


def test_the_function_length_check_measures_what_it_claims(tmp_path: Path):
    source = "@decorated\ndef f():\n" + "    x = 1\n" * 80 + "\n\ndef g():\n    pass\n"
    path = tmp_path / "long.py"
    path.write_text(source)
    assert sorted(_function_lengths(path)) == [(2, "g"), (82, "f")]


def test_the_sync_service_imports_neither_pandas_nor_the_patterns():
    """A sync without patterns (every cron job with --no-patterns) never loads pandas: it
    costs about 0.3 s and 70 MB of every process start (issue 19)."""
    probe = (
        "import sys, fulcrum_sync.services.run.sync, fulcrum_sync.cli.sync; "
        "print(sorted(m for m in ('pandas', 'statsmodels', 'fulcrum_sync.patterns') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
