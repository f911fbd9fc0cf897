"""``--version``, completion, rich help that shows allowed values, one-line usage errors."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fulcrum_sync import __version__
from fulcrum_sync.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_version_is_printed_and_matches_the_package_and_the_image() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"fulcrum-sync {__version__}\n"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG VERSION={__version__}\n" in dockerfile
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile


def test_completion_is_on() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["sync"], "[day|week|month|quarter]"),
        (["backfill"], "[day|week|month|quarter]"),
        (["status"], "[day|week|month|quarter]"),
        (["state", "show"], "[day|week|month|quarter]"),
        (["cache-load"], "[local|snowflake]"),
        (["sync"], "[auto|rich|json]"),
        (["state", "reset"], "[sync-status|run-keys|series|patterns"),
    ],
)
def test_help_shows_the_allowed_values(command: list[str], shown: str) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert shown in result.stdout
    assert "╭─ Options" in result.stdout  # rich help panels


def test_grain_aliases_are_still_accepted(sqlite_url: str) -> None:
    env = {"FULCRUM_SYNC_DATABASE_URL": sqlite_url}
    result = runner.invoke(app, ["sync", "--grain", "daily", "--dry-run", "-t", "acme"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["request"]["grain"] == "day"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "--grain", "hourly"], "Error: unknown grain 'hourly': expected one of day"),
        (["--log-format", "xml", "status"], "Error: invalid --log-format 'xml'"),
        (["state", "show", "--grain", "fortnight"], "Error: unknown grain 'fortnight'"),
    ],
)
def test_bad_values_are_our_one_line_error(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)
    assert not re.search(r"Traceback|╭", result.output)


def _commands() -> list[tuple[list[str], object]]:
    import typer

    out: list[tuple[list[str], object]] = []

    def walk(group: object, prefix: list[str]) -> None:
        if not isinstance(group, typer.core.TyperGroup):
            return
        ctx = typer.Context(group)  # the root loads each command when it is looked up
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            out.append(([*prefix, name], sub))
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = _commands()


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_markdown_help_keeps_every_word_of_the_docstring(path: list[str], command: object) -> None:
    doc = str(getattr(command, "help", "") or "").replace("`", "")
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    shown = " ".join(result.stdout.split())
    for word in re.findall(r"[A-Za-z0-9_<>:./-]+", doc):
        assert word in shown, f"{' '.join(path)}: {word!r} lost in --help"
