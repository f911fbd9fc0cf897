"""State databases for tests: one built by CLI commands for a module, a copy per test, and
what one holds, read without migrating it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_invoke import Cli
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.pool import NullPool

from fulcrum_sync.catalog import Catalog
from fulcrum_sync.store.catalog import read_catalog


@contextmanager
def unmigrated(url: str) -> Iterator[Engine]:
    """An engine on ``url`` that creates nothing and holds no connection afterwards."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    """The tables in the database at ``url`` (empty when nothing was ever written)."""
    with unmigrated(url) as engine:
        return set(inspect(engine).get_table_names())


def stored_catalog(url: str) -> Catalog:
    """The catalog the database at ``url`` holds."""
    with unmigrated(url) as engine:
        return read_catalog(engine)


@contextmanager
def new_state(
    factory: pytest.TempPathFactory, name: str, **env: str | None
) -> Iterator[tuple[Path, Cli]]:
    """A SQLite state database in a new folder and the CLI on it (the demo settings and
    ``env``), for a module-scoped fixture; the folder is the working directory meanwhile."""
    path = factory.mktemp(name) / "state.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path.parent)
        yield path, Cli.demo(f"sqlite:///{path}", **env)


def copy_of(path: Path, folder: Path, name: str = "state.db") -> str:
    """The URL of a copy, in ``folder``, of the SQLite database at ``path``."""
    copy = folder / name
    shutil.copy(path, copy)
    return f"sqlite:///{copy}"
