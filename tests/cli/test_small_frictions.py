"""Small frictions: completion of option values, flags without metavars, `--log-format`
after any command, library warnings through the log, the Ctrl-C notice on its own line."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import warnings
from pathlib import Path

import pytest
from cli_invoke import Cli
from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.cli._common import stop_on_sigterm
from fulcrum_sync.cli._root import hoist_log_format
from fulcrum_sync.logs import configure_logging
from fulcrum_sync.render.console import SyncProgress


def complete(url: str, line: str) -> list[str]:
    """What bash completion offers for the last word of ``line``."""
    words = line.split(" ")
    result = CliRunner().invoke(  # completion: a program name, no settings
        app,
        [],
        prog_name="fulcrum-sync",
        env={
            "FULCRUM_SYNC_DATABASE_URL": url,
            "_FULCRUM_SYNC_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        },
    )
    assert result.exit_code == 0, result.output
    return result.stdout.split()


@pytest.fixture(scope="module")
def discovered(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("complete") / "state.db"
    url = f"sqlite:///{path}"
    assert Cli.demo(url)("discover").exit_code == 0
    return url


def test_option_values_complete_from_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert complete(url, "fulcrum-sync sync --grain ") == ["day", "week", "month", "quarter"]
    assert complete(url, "fulcrum-sync --log-format ") == ["auto", "rich", "json"]
    assert complete(url, "fulcrum-sync runs --outcome fa") == ["failed"]
    assert complete(url, "fulcrum-sync state reset --what sync-status,ru") == [
        "sync-status,run-keys"
    ]
    assert complete(url, "fulcrum-sync patterns run --pattern dim") == ["dimension_analysis"]


def test_tenants_and_contexts_complete_from_the_state_database(discovered: str) -> None:
    assert complete(discovered, "fulcrum-sync sync -t ") == ["acme", "initech", "umbrella"]
    contexts = complete(discovered, "fulcrum-sync series show acme::")
    assert "acme::new_revenue" in contexts and all(c.startswith("acme::") for c in contexts)
    assert "orders" in complete(discovered, "fulcrum-sync cache-load --metric ord")
    assert complete(discovered, "fulcrum-sync runs --command ") == []  # no run recorded yet


def test_no_database_completes_to_nothing_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "state.db"
    assert complete(f"sqlite:///{missing}", "fulcrum-sync sync -t ") == []
    assert not missing.parent.exists()
    assert complete("postgresql+psycopg://nobody@127.0.0.1:1/none", "fulcrum-sync sync -t ") == []


@pytest.mark.parametrize(
    "command", [["sync"], ["backfill"], ["cache-load"], ["patterns", "run"], ["runs"], ["status"]]
)
def test_help_shows_no_bool_or_raw_range_metavar(command: list[str]) -> None:
    text = Cli()(*command, "--help", env={"COLUMNS": "160"}).stdout
    assert "<bool>" not in text and "int range" not in text and "<=x<=" not in text, text


def test_workers_shows_n_with_its_range_in_words_and_refuses_outside_it() -> None:
    text = Cli()("sync", "--help", env={"COLUMNS": "160"}).stdout
    (line,) = [line for line in text.splitlines() if "--workers" in line]
    assert re.search(r"--workers\s+-w\s+N\s+Contexts worked at once, 1 to 64", line), line
    bad = Cli()("sync", "-g", "day", "--workers", "65")
    assert bad.exit_code == 2 and "65 is out of range: expected 1 to 64" in bad.output


def test_log_format_moves_in_front_of_the_command() -> None:
    assert hoist_log_format(["sync", "-g", "day", "--log-format", "json"]) == [
        "--log-format",
        "json",
        "sync",
        "-g",
        "day",
    ]
    assert hoist_log_format(["status", "--log-format=rich"]) == ["--log-format=rich", "status"]
    assert hoist_log_format(["sync", "--", "--log-format", "x"]) == [
        "sync",
        "--",
        "--log-format",
        "x",
    ]
    assert hoist_log_format(["sync", "--log-format"]) == ["sync", "--log-format"]


@pytest.mark.parametrize(
    "args",
    [
        ["discover"],
        ["status"],
        ["sync", "-g", "day", "-p", "2025-09-30", "-t", "acme", "-m", "orders", "--force"],
    ],
)
def test_log_format_is_accepted_after_every_command(tmp_path: Path, args: list[str]) -> None:
    cli = Cli.demo(f"sqlite:///{tmp_path / 'state.db'}")
    sync = ["sync", "-g", "day", "-p", "2025-09-30", "-t", "acme", "-m", "orders", "--no-patterns"]
    assert cli(*sync).exit_code == 0  # a run recorded: status has something to watch
    result = cli(*args, "--log-format", "json")
    assert result.exit_code in (0, 1), result.output  # status: 1 while contexts are behind
    if args[0] != "status":  # jobs write JSON lines to stdout in JSON mode
        last = json.loads(result.stdout.strip().splitlines()[-1])
        assert last["event"] == f"{args[0]} finished"
    bad = cli(*args, "--log-format", "xml")
    assert bad.exit_code == 2 and "invalid --log-format 'xml'" in bad.output


def test_a_library_warning_is_a_log_line_named_by_its_module_without_paths() -> None:
    import jwt

    buffer = io.StringIO()
    with warnings.catch_warnings():
        configure_logging("json", stream=buffer)
        try:
            jwt.encode({"sub": "x"}, "short", algorithm="HS256")
            warnings.warn_explicit(
                "Arrow output on a DB-API result makes an extra copy",
                UserWarning,
                "/venv/lib/python3.11/site-packages/fakesnow/cursor.py",
                689,
                module="fakesnow.cursor",
            )
        finally:
            configure_logging("rich", stream=io.StringIO())
    (line,) = [json.loads(x) for x in buffer.getvalue().splitlines()]
    assert line["logger"] == "jwt.api_jwt" and line["level"] == "warning"
    assert line["event"].startswith(
        "InsecureKeyLengthWarning from jwt.api_jwt: The HMAC key is 5 bytes long"
    )
    assert "/" not in line["event"] and "site-packages" not in buffer.getvalue()


def test_the_ctrl_c_notice_is_on_a_line_of_its_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws the bar as on a terminal
    with stop_on_sigterm() as stop, SyncProgress() as progress:
        progress.start(10)
        progress.update(3, 10)
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(30)
    err = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().err)  # colours go
    err = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", err)  # cursor moves and erases end a line
    pieces = [p.strip() for p in re.split(r"[\r\n]", err) if p.strip()]
    notice = "Received SIGINT: finishing work in flight, releasing the rest."
    assert notice in pieces, pieces


def test_tenants_complete_from_postgresql_too(pg_url: str) -> None:
    assert Cli.demo(pg_url)("discover").exit_code == 0
    assert complete(pg_url, "fulcrum-sync state show --tenant a") == ["acme"]
    args = ["sync", "-g", "day", "-p", "2025-09-30", "-t", "acme", "-m", "orders", "--no-patterns"]
    assert Cli.demo(pg_url)(*args).exit_code == 0
    assert complete(pg_url, "fulcrum-sync runs --command ") == ["sync"]
