"""Fake Snowflake accounts on fakesnow that count statements and round trips.

:class:`FakeAccount` is one account (its own fakesnow instance, so its own databases) that
accepts one password: ``account.connect`` is the ``connect`` factory a sink is given (no
monkeypatching). A wrong password raises the connector's own ``DatabaseError`` 390100, as a
real account answers. Every connection is wrapped in :class:`CountingConnection`, which

* counts statements (each SQL statement run) and round trips (each request a real
  connector would send: one per ``execute``, a multi-statement request included, plus one
  for the upload a ``PUT`` makes);
* runs a multi-statement request (``num_statements``) as the real connector would on a real
  account, by running its statements one after the other on fakesnow, which has no
  multi-statement requests of its own (``multi_statement = True`` tells the sink so);
* calls ``after_statement(sql)`` hooks (a test's reader) and charges a latency per round
  trip to a :class:`Counter` (slept, or only added up: ``sleep=False``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEPARATOR = ";\n"  # how the sink joins the statements of one request


@dataclass
class Counter:
    """Statements and round trips of every connection of an account (thread-safe)."""

    latency: float = 0.0  # seconds charged per round trip
    sleep: bool = False  # really sleep the latency (else only add it up)
    statements: int = 0
    round_trips: int = 0
    waited: float = 0.0
    log: list[str] = field(default_factory=list)
    after_statement: list[Callable[[str], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def trip(self, n: int = 1) -> None:
        with self._lock:
            self.round_trips += n
            self.waited += self.latency * n
        if self.sleep and self.latency:
            time.sleep(self.latency * n)

    def statement(self, sql: str) -> None:
        with self._lock:
            self.statements += 1
            self.log.append(sql)
        for hook in list(self.after_statement):
            hook(sql)

    def reset(self) -> None:
        with self._lock:
            self.statements = self.round_trips = 0
            self.waited = 0.0
            self.log.clear()


class CountingCursor:
    """A fakesnow cursor that counts, and runs multi-statement requests statement by statement."""

    def __init__(self, inner: Any, counter: Counter) -> None:
        self._inner = inner
        self._counter = counter

    def execute(
        self, command: str, params: Any = None, *args: Any, num_statements: int | None = None
    ) -> CountingCursor:
        multi = num_statements is not None and num_statements > 1
        statements = command.split(SEPARATOR) if multi else [command]
        if num_statements and num_statements != len(statements):
            raise ValueError(f"{len(statements)} statements sent, {num_statements} declared")
        self._counter.trip(2 if command.lstrip().upper().startswith("PUT ") else 1)
        for sql in statements:
            self._inner.execute(sql, params)
            self._counter.statement(sql)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CountingConnection:
    """A fakesnow connection whose cursors count (see :class:`CountingCursor`)."""

    multi_statement = True

    def __init__(self, inner: Any, counter: Counter) -> None:
        self._inner = inner
        self._counter = counter

    def cursor(self, *args: Any, **kwargs: Any) -> CountingCursor:
        return CountingCursor(self._inner.cursor(*args, **kwargs), self._counter)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FakeAccount:
    """A Snowflake account on its own fakesnow instance, accepting one password.

    :param password: the one password it accepts (key-pair logins are accepted as they are).
    :param counter: where its connections count (default: a new one).
    """

    def __init__(self, password: str, counter: Counter | None = None) -> None:
        from fakesnow.instance import FakeSnow

        self.password = password
        self.counter = counter or Counter()
        self._snow = FakeSnow()
        self.logins: list[str] = []  # users who connected

    def connect(self, **kwargs: Any) -> CountingConnection:
        """The ``connect`` factory: refuse a wrong password as Snowflake does (390100)."""
        import snowflake.connector

        self.counter.trip()  # the login request
        if "private_key" not in kwargs and kwargs.get("password") != self.password:
            raise snowflake.connector.errors.DatabaseError(
                msg=f"Failed to connect to DB: {kwargs.get('account')}.snowflakecomputing.com:443."
                " Incorrect username or password was specified.",
                errno=390100,
                sqlstate="08001",
            )
        self.logins.append(str(kwargs.get("user")))
        wanted = {k: kwargs[k] for k in ("database", "schema") if k in kwargs}
        return CountingConnection(self._snow.connect(**wanted), self.counter)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` on a fresh, uncounted connection of this account (a reader's view)."""
        conn = self._snow.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return list(cur.fetchall())
        finally:
            conn.close()

    def tables(self, database: str) -> set[str]:
        """The tables of ``database`` (``SCHEMA.NAME``), read through its INFORMATION_SCHEMA."""
        try:
            rows = self.query(
                f'SELECT "TABLE_SCHEMA", "TABLE_NAME" FROM "{database}".INFORMATION_SCHEMA.TABLES'
            )
        except Exception:  # no such database in this account
            return set()
        return {f"{schema}.{name}" for schema, name in rows}
