"""The CLI starts lazily: the root loads a command's module when the command is looked up
(issue 26). The script's garbage collection while it starts: tests/test_collector.py."""

from __future__ import annotations

import sys

import pytest
import typer

from fulcrum_sync.cli import app
from fulcrum_sync.cli._root import COMMANDS


def test_the_root_lists_every_command_and_builds_none_until_looked_up() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    ctx = typer.Context(root)
    assert root.list_commands(ctx) == list(COMMANDS)
    assert root.commands == {}  # nothing built yet
    sync = root.get_command(ctx, "sync")
    assert sync is not None and sync.name == "sync"
    assert list(root.commands) == ["sync"]
    assert root.get_command(ctx, "no-such-command") is None


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_loads_from_its_module(name: str) -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    command = root.get_command(typer.Context(root), name)
    assert command is not None and command.name == name
    assert f"fulcrum_sync.cli.{COMMANDS[name][0]}" in sys.modules
    assert command.help, f"{name} has no help"


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["synk"], "Did you mean 'sync'?"),
        (["stat"], "Did you mean 'state', 'status'?"),
        (["catalog", "lod"], "Did you mean 'load'?"),
    ],
)
def test_a_mistyped_command_is_told_the_near_ones_not_yet_loaded(
    args: list[str], hint: str
) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert hint in " ".join(result.output.split())
