"""Cache loads taken before they are done, so two processes loading at once (the pods of one
grain's sync, or ``cache-load`` beside a ``sync --cache-load``) load each changed table once.

On PostgreSQL a load is a transaction-scoped advisory lock per context and target, tried
without waiting (:func:`hold_loads`), on a connection of its own, held until the load is
recorded. The process that gets it reads the baseline again (another may have loaded that
version meanwhile) and loads; the others leave it. A lock dies with its connection: a process
killed mid-load leaves the context's version unloaded, and the next run loads it. A lock
connection ended while its process still works (terminated by an operator, a network cut)
is seen by :meth:`HeldLoads.alive`: the caller then loads and records nothing more under it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, text

from fulcrum_sync.store.cache import LoadBaseline, read_baselines
from fulcrum_sync.store.engine import translate_errors
from fulcrum_sync.store.versions import ContextKey

# Each key's lock, tried without waiting: the schema is in the key, so deployments sharing a
# database in schemas of their own never hold each other's loads.
_TRY_LOCKS = text(
    "SELECT k FROM unnest(CAST(:keys AS text[])) AS k WHERE pg_try_advisory_xact_lock("
    "hashtextextended('fulcrum-sync cache load|' || current_schema() || '|' || k, 0))"
).bindparams(bindparam("keys"))


_ALIVE = text("SELECT 1")
_NO_IDLE_TIMEOUT = text("SET LOCAL idle_in_transaction_session_timeout = 0")


@dataclass(slots=True)
class HeldLoads:
    """The loads this process took (:func:`hold_loads`), until :meth:`release`.

    ``baselines``: each held context's baseline, read once its lock was taken; None when the
    database takes no such locks (SQLite: every load is this process's, and the baselines
    read before stand).
    """

    baselines: dict[ContextKey, LoadBaseline] | None
    conn: Connection | None = None

    def holds(self, key: ContextKey) -> bool:
        return self.baselines is None or key in self.baselines

    def alive(self) -> bool:
        """True while the locks are still held: their transaction answers (always, without
        locks). False once its connection was lost (terminated, cut): another process may
        take these loads now, so this one must load and record nothing more under them."""
        if self.baselines is None:
            return True
        if self.conn is None:
            return False
        try:
            self.conn.execute(_ALIVE)
        except Exception:  # the session is gone, and its locks with it
            return False
        return True

    def release(self) -> None:
        """End the transaction holding the locks (the loads were recorded before)."""
        if self.conn is not None:
            with contextlib.suppress(Exception):  # a lost connection released them already
                self.conn.rollback()
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def _lock_key(key: ContextKey, target: str) -> str:
    return f"{key[0]}|{key[1]}|{key[2]}|{target}"


def hold_loads(engine: Engine, target: str, keys: list[ContextKey]) -> HeldLoads:
    """Take the loads of ``keys`` into ``target`` that no other process holds (PostgreSQL),
    and read each taken context's baseline anew. The caller loads and records them, then
    calls :meth:`HeldLoads.release`. Raises StoreError (nothing is held then)."""
    if engine.dialect.name != "postgresql" or not keys:
        return HeldLoads(None)
    by_lock = {_lock_key(key, target): key for key in keys}
    with translate_errors(engine, "take cache loads in"):
        conn = engine.connect()
        try:
            conn.begin()
            # The transaction idles while the loads run: a server's idle timeout must not end it.
            conn.execute(_NO_IDLE_TIMEOUT)
            taken = [
                by_lock[k] for k in conn.execute(_TRY_LOCKS, {"keys": list(by_lock)}).scalars()
            ]
            held = HeldLoads(read_baselines(conn, target, taken), conn)
        except BaseException:
            conn.close()
            raise
    return held
