"""The one way tests run ``fulcrum-sync`` in-process: a :class:`Cli` and what it returns.

The ``cli`` fixture (conftest) is a ``Cli`` on the demo source and the test's database. One call
adds settings (``env=``, where ``None`` unsets one), pins today (``today=``), hands in fakes
(``deps=``) or types at a prompt (``input=``)::

    ran = cli("sync", "--grain", "day", "--json", env={"FULCRUM_SYNC_WORKERS": "1"})
    assert ran.exit_code == 0, ran.output
    report = ran.json()

``cli.but(...)`` is the same invoker with other defaults, ``Cli.demo(url)`` one for a database
that a module-scoped fixture built. An exception that escapes the CLI is raised in the test with
its own traceback rather than turned into exit code 1: the CLI must never show one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from typer.testing import CliRunner

from fulcrum_sync.cli import app
from fulcrum_sync.services.deps import Deps

Env = Mapping[str, str | None]


def demo_env(url: str) -> dict[str, str]:
    """The settings most CLI tests run with: the demo source on ``url``, rich logs, 2 workers."""
    return {
        "FULCRUM_SYNC_DATABASE_URL": url,
        "FULCRUM_SYNC_SOURCE": "demo",
        "FULCRUM_SYNC_LOG_FORMAT": "rich",
        "FULCRUM_SYNC_WORKERS": "2",
    }


@dataclass(frozen=True)
class Ran:
    """What one command did: its exit code and what it wrote."""

    exit_code: int
    stdout: str
    stderr: str
    output: str  # stdout and stderr as they interleaved
    exception: BaseException | None

    def json(self) -> Any:
        """The command's ``--json`` document on stdout."""
        return json.loads(self.stdout)

    @property
    def lines(self) -> list[str]:
        """The lines on stdout."""
        return self.stdout.splitlines()


@dataclass(frozen=True)
class Cli:
    """Runs ``fulcrum-sync`` with these settings; each call may add to them."""

    env: Env = field(default_factory=dict)
    today: date | str | None = None
    deps: Deps | None = None

    @classmethod
    def demo(cls, url: str, **env: str | None) -> Cli:
        return cls(env={**demo_env(url), **env})

    def but(self, **changes: Any) -> Cli:
        """This invoker with other defaults: ``env`` is added to the current settings."""
        if "env" in changes:
            changes["env"] = {**self.env, **changes["env"]}
        return replace(self, **changes)

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
            obj=deps if deps is not None else self.deps,
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
