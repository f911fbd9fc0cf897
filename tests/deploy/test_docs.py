"""Docs match the CLI: every command has help with an example and a README section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "scripts"))
from gen_docs import command_paths  # noqa: E402

GROUPS = ("catalog", "db", "state", "series")  # groups without an action of their own
LEAVES = [p for p in command_paths() if p and p[0] not in GROUPS] + [
    ["catalog", "load"],
    ["catalog", "validate"],
    ["catalog", "show"],
    ["db", "upgrade"],
    ["db", "current"],
    ["state", "show"],
    ["state", "reset"],
    ["state", "prune"],
    ["series", "show"],
]


def test_leaves_name_every_command_of_the_groups():
    in_groups = [p for p in command_paths() if len(p) == 2 and p[0] in GROUPS]
    assert sorted(in_groups) == sorted(p for p in LEAVES if p[0] in GROUPS)


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example_and_a_readme_section(path: list[str]):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    example = result.output.split("Example:")[-1]
    assert "Example:" in result.output and "fulcrum-sync" in example, f"{path}: no example"
    assert f"fulcrum-sync {' '.join(path)}" in README, f"{path} has no example in README.md"


def test_every_setting_is_in_the_readme():
    for name in Settings.model_fields:
        assert f"FULCRUM_SYNC_{name.upper()}" in README


def test_generated_docs_are_current():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in README and "<!-- test-command -->" in ci
    assert "pytest" in README.split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run(
        [sys.executable, "-m", "fulcrum_sync", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "sync" in done.stdout
