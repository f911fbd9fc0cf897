"""Every help page names what a value is: no Typer type label (``<str>``, ``<bool>``,
``<file>``), no ``{name}`` in a usage line, positional arguments by an upper-case metavar."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from fulcrum_sync.cli import app

runner = CliRunner()
TYPE_LABEL = re.compile(r"<(?:str|int|float|bool|file|path|text|integer|datetime|uuid)\b[^>]*>")


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]

    def walk(group: object, prefix: list[str]) -> None:
        for name, sub in sorted(getattr(group, "commands", {}).items()):
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def help_of(path: list[str]) -> str:
    env = {"COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}
    result = runner.invoke(app, [*path, "--help"], env=env, terminal_width=120)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "fulcrum-sync")
def test_help_shows_metavars_not_type_labels(path: list[str]) -> None:
    text = help_of(path)
    assert not TYPE_LABEL.search(text), TYPE_LABEL.findall(text)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage
    if "Arguments" in text:
        panel = text.split("Arguments", 1)[1].split("╰", 1)[0]
        names = [row.split()[2] for row in panel.splitlines() if row.startswith("│ *")]
        assert names and all(n == n.upper() for n in names), names
        assert all(n in usage for n in names), usage


def test_a_missing_argument_is_named_by_its_metavar() -> None:
    result = runner.invoke(app, ["series", "show", "--grain", "day"])
    assert result.exit_code == 2
    assert "TENANT::METRIC" in result.output
    assert "context" not in result.output.split("Missing argument", 1)[1].split("\n")[0]
