"""The one way tests run ``fulcrum-sync`` in-process: a :class:`Cli` and what it returns.

The ``cli`` fixture (conftest) is a ``Cli`` on the demo source and the test's database. One call
adds settings (``env=``, where ``None`` unsets one), pins today (``today=``), hands in fakes
(``deps=``) or types at a prompt (``input=``)::

    ran = cli("sync", "--grain", "day", "--json", env={"FULCRUM_SYNC_WORKERS": "1"})
    assert ran.exit_code == 0, ran.output
    report = ran.json()

``cli.but(...)`` is the same invoker with other defaults; ``Cli.demo(url)`` and ``Cli.on(url)``
are invokers for a database a test or a module-scoped fixture built. An exception that escapes
the CLI is raised in the test with its own traceback rather than turned into exit code 1: the
CLI must never show one. Tests that need a real process (signals, two processes at once) use
:func:`fulcrum_argv`, :func:`process_env` and :func:`run_process`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.services.deps import Deps

Env = Mapping[str, str | None]


# --------------------------------------------------------------------------- real processes


def fulcrum_argv(*args: str) -> list[str]:
    """The command line that runs ``fulcrum-sync`` in a process of its own."""
    return [sys.executable, "-m", "fulcrum_sync", *args]


def process_env(url: str) -> dict[str, str]:
    """This machine's environment less any FULCRUM_SYNC_* setting, then the demo source on
    ``url`` with JSON logs and short leases (a killed process's keys come back soon)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    env.update(
        FULCRUM_SYNC_DATABASE_URL=url,
        FULCRUM_SYNC_SOURCE="demo",
        FULCRUM_SYNC_LOG_FORMAT="json",
        FULCRUM_SYNC_LEASE_SECONDS="30",
    )
    return env


def run_process(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``fulcrum-sync`` in a process of its own to the end; its output as text."""
    return subprocess.run(fulcrum_argv(*args), env=env, capture_output=True, text=True)


# --------------------------------------------------------------------------- in-process


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-blank line of ``text`` as JSON (a job's output in JSON log mode)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def demo_env(url: str) -> dict[str, str]:
    """The settings most CLI tests run with: the demo source on ``url``, rich logs, 2 workers."""
    return {
        "FULCRUM_SYNC_DATABASE_URL": url,
        "FULCRUM_SYNC_SOURCE": "demo",
        "FULCRUM_SYNC_LOG_FORMAT": "rich",
        "FULCRUM_SYNC_WORKERS": "2",
    }


def json_document(stdout: str) -> Any:
    """The command's JSON document on stdout, without any JSON log lines sharing the stream."""
    try:
        return json.loads(stdout)
    except ValueError:
        kept = [line for line in stdout.splitlines() if not _is_log_line(line)]
        return json.loads("\n".join(kept))


def _is_log_line(line: str) -> bool:
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and {"level", "event"} <= record.keys()


@dataclass(frozen=True)
class Ran:
    """What one command did: its exit code and what it wrote."""

    exit_code: int
    stdout: str
    stderr: str
    output: str  # stdout and stderr as they interleaved
    exception: BaseException | None

    def json(self) -> Any:
        """The command's ``--json`` document on stdout (JSON log lines there left out)."""
        return json_document(self.stdout)


@dataclass(frozen=True)
class Cli:
    """Runs ``fulcrum-sync`` with these settings; each call may add to them."""

    env: Env = field(default_factory=dict)
    today: date | str | None = None
    deps: Deps | None = None

    @classmethod
    def demo(cls, url: str, **env: str | None) -> Cli:
        """The settings most CLI tests use (:func:`demo_env`) on ``url``."""
        return cls(env={**demo_env(url), **env})

    @classmethod
    def on(cls, url: str, **env: str | None) -> Cli:
        """The demo source on ``url``, every other setting its default (JSON logs off a
        terminal, the default workers)."""
        return cls(env={"FULCRUM_SYNC_DATABASE_URL": url, "FULCRUM_SYNC_SOURCE": "demo", **env})

    def but(self, **changes: Any) -> Cli:
        """This invoker with other defaults: ``env`` is added to the current settings."""
        if "env" in changes:
            changes["env"] = {**self.env, **changes["env"]}
        return replace(self, **changes)

    def _fresh_deps(self) -> Deps | None:
        # A command fills its Deps in (settings, engine, log format): each call gets its own
        # copy of this invoker's, as each command of a real process starts afresh.
        if self.deps is None:
            return None
        return replace(self.deps, stop=threading.Event())

    def ok(self, *args: str, **call: Any) -> Ran:
        """Run the command as :meth:`__call__` does and fail the test unless it exits 0."""
        ran = self(*args, **call)
        assert ran.exit_code == 0, f"{' '.join(args)}: exit {ran.exit_code}\n{ran.output}"
        return ran

    def __call__(
        self,
        *args: str,
        env: Env | None = None,
        today: date | str | None = None,
        deps: Deps | None = None,
        input: str | None = None,
    ) -> Ran:
        settings = dict(self.env)
        pinned = today if today is not None else self.today
        if pinned is not None:
            settings["FULCRUM_SYNC_TODAY"] = str(pinned)
        settings.update(env or {})
        result = CliRunner().invoke(
            app,
            list(args),
            env=settings,
            obj=deps if deps is not None else self._fresh_deps(),
            input=input,
            catch_exceptions=False,
        )
        return Ran(
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            output=result.output,
            exception=result.exception,
        )
