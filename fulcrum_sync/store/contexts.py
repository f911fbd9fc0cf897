"""Store the set of active contexts; deactivate (never delete) the ones that went away."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Engine, and_, bindparam, select, update

from fulcrum_sync.domain import Grain
from fulcrum_sync.store import tables as t
from fulcrum_sync.store.engine import reconnecting, serialize, translate_errors

if TYPE_CHECKING:  # built when contexts are saved (discover); a job reading them needs none
    from fulcrum_sync.domain import ContextChanges

# (tenant_id, metric_id, grain, pattern) — pattern is "" for a metric context.
ContextKey = tuple[int, str, str, str]


def _label(tenant: str, metric: str, grain: str, pattern: str) -> str:
    name = f"{tenant}::{metric}::{pattern}" if pattern else f"{tenant}::{metric}"
    return f"{name}@{grain}"


@reconnecting
def save_contexts(
    engine: Engine, desired: dict[ContextKey, str], grain: Grain | None = None
) -> ContextChanges:
    """Make the stored active contexts (of ``grain``, or all) equal ``desired``.

    ``desired`` maps each context key to its tenant identifier. Contexts that are no longer
    desired are marked inactive with ``deactivated_at``; their data stays.
    """
    from fulcrum_sync.domain import ContextChanges

    now = datetime.now(UTC)
    changes = ContextChanges()
    with translate_errors(engine, "save contexts to"), engine.begin() as conn:
        serialize(conn, "contexts")
        query = select(t.contexts)
        if grain is not None:
            query = query.where(t.contexts.c.grain == grain.value)
        stored = {(r.tenant_id, r.metric_id, r.grain, r.pattern): r for r in conn.execute(query)}
        new_rows = []
        for key, tenant in desired.items():
            row = stored.get(key)
            if row is None:
                new_rows.append(
                    {
                        "tenant_id": key[0],
                        "metric_id": key[1],
                        "grain": key[2],
                        "pattern": key[3],
                        "tenant": tenant,
                        "active": True,
                        "first_seen": now,
                        "last_seen": now,
                        "deactivated_at": None,
                    }
                )
                changes.added.append(_label(tenant, key[1], key[2], key[3]))
            elif not row.active:
                changes.reactivated.append(_label(tenant, key[1], key[2], key[3]))
            else:
                changes.unchanged += 1
        if new_rows:
            conn.execute(t.contexts.insert(), new_rows)
        gone = [k for k, r in stored.items() if r.active and k not in desired]
        if gone:
            conn.execute(
                update(t.contexts)
                .where(_key_clause_bound())
                .values(active=False, deactivated_at=now),
                [{"k0": k[0], "k1": k[1], "k2": k[2], "k3": k[3]} for k in gone],
            )
        changes.deactivated.extend(_label(stored[k].tenant, k[1], k[2], k[3]) for k in gone)
        seen = [k for k in desired if k in stored]
        if seen:
            # The tenant's identifier may have changed under the same tenant_id: keep it current.
            conn.execute(
                update(t.contexts)
                .where(_key_clause_bound())
                .values(
                    active=True, last_seen=now, deactivated_at=None, tenant=bindparam("identifier")
                ),
                [
                    {"k0": k[0], "k1": k[1], "k2": k[2], "k3": k[3], "identifier": desired[k]}
                    for k in seen
                ],
            )
    for names in (changes.added, changes.deactivated, changes.reactivated):
        names.sort()
    return changes


def _key_clause_bound() -> ColumnElement[bool]:
    c = t.contexts.c
    return and_(
        c.tenant_id == bindparam("k0"),
        c.metric_id == bindparam("k1"),
        c.grain == bindparam("k2"),
        c.pattern == bindparam("k3"),
    )


@reconnecting
def active_context_keys(engine: Engine, grain: Grain | None = None) -> set[ContextKey]:
    """Return the keys of the stored active contexts (of ``grain``, or all)."""
    with translate_errors(engine, "read contexts from"), engine.connect() as conn:
        query = select(t.contexts).where(t.contexts.c.active.is_(True))
        if grain is not None:
            query = query.where(t.contexts.c.grain == grain.value)
        return {(r.tenant_id, r.metric_id, r.grain, r.pattern) for r in conn.execute(query)}
