"""A job pays only for what it runs: an everything-done `sync` imports no pandas, numpy,
statsmodels, yaml, alembic or the other database's dialect; nor rich off a terminal, the
other commands' modules, or the parts of the domain, the run and the store that only work
to do needs (issue 26)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOT_WHEN_DONE = (
    "pandas",
    "numpy",
    "statsmodels",
    "yaml",
    "alembic",
    "rich",  # nothing is drawn: the job writes JSON lines (rich.progress included)
    "sqlalchemy.dialects.postgresql",
    "httpx",
    "prometheus_client",  # no Pushgateway set: nothing is pushed
    "fulcrum_sync.metrics",
    "fulcrum_sync.patterns",  # every pattern key is done: no pattern runs
    "fulcrum_sync.services.patterns.run",
    # Commands load when they run (cli/_root.py COMMANDS): only cli/sync.py here.
    *(
        f"fulcrum_sync.cli.{m}"
        for m in (
            "admin",
            "backfill",
            "cache_load",
            "discover",
            "doctor",
            "patterns",
            "reports",
            "series",
            "state",
            "verify",
        )
    ),
    # The domain loads name by name (domain/__init__.py): a sync reads no reports or state.
    "fulcrum_sync.domain.reports",
    "fulcrum_sync.domain.state",
    "fulcrum_sync.domain.backfill",
    # Work that finds nothing to do: no context's sync, discovery, statuses or sink.
    "fulcrum_sync.services.run.sync_context",
    "fulcrum_sync.services.run.pending",
    "fulcrum_sync.services.run.context_store",
    "fulcrum_sync.services.run.stretches",
    "fulcrum_sync.services.contexts.discover",
    "fulcrum_sync.store.series",
    "fulcrum_sync.store.sync_status",
    "fulcrum_sync.store.sync_write",
    "fulcrum_sync.render.sync",
    "fulcrum_sync.sinks",
)


def imported(stderr: str) -> set[str]:
    """The modules a ``python -X importtime`` run imported."""
    return {m.group(1) for m in re.finditer(r"^import time:.*\|\s*([\w.]+)\s*$", stderr, re.M)}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_SYNC_")}
    env["FULCRUM_SYNC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'state.db'}"
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_everything_done_sync_imports_only_what_it_runs(tmp_path: Path) -> None:
    first = run(tmp_path, "-X", "importtime", "-m", "fulcrum_sync", "sync", "--grain", "day")
    assert first.returncode == 0, first.stderr[-2000:]
    ran = imported(first.stderr)
    assert {"pandas", "numpy"} <= ran, "the first run syncs and runs patterns: it needs them"
    work = {"fulcrum_sync.services.run.sync_context", "fulcrum_sync.store.series"}
    assert work <= ran, "the names above are the modules work loads"

    again = run(tmp_path, "-X", "importtime", "-m", "fulcrum_sync", "sync", "--grain", "day")
    assert again.returncode == 0, again.stderr[-2000:]
    modules = imported(again.stderr)
    assert "sqlalchemy" in modules  # the parse found the imports
    loaded = sorted(m for m in modules for heavy in NOT_WHEN_DONE if _within(m, heavy))
    assert loaded == [], f"an everything-done sync imported {loaded}"
    assert "fulcrum_sync.cli.sync" in modules  # the command's own module, loaded by name


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_scheduled_job_that_finds_everything_done_imports_no_pandas(tmp_path: Path) -> None:
    """The crontab's and the CronJob's command: ``--catch-up`` counts the pattern keys of the
    recent periods from the keys' table, not the patterns (pandas, numpy)."""
    job = ("-m", "fulcrum_sync", "sync", "--grain", "day", "--catch-up", "--cache-load")
    first = run(tmp_path, *job)
    assert first.returncode == 0, first.stderr[-2000:]
    again = run(tmp_path, "-X", "importtime", *job)
    assert again.returncode == 0, again.stderr[-2000:]
    modules = imported(again.stderr)
    assert "fulcrum_sync.services.run.catch_up" in modules  # the parse found the imports
    heavy = ("pandas", "numpy", "statsmodels", "fulcrum_sync.patterns", "rich")
    loaded = sorted(m for m in modules for h in heavy if _within(m, h))
    assert loaded == [], f"the scheduled everything-done sync imported {loaded}"
