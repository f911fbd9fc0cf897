"""The one way a sync, a catch-up and a backfill run a context's patterns after its sync.

The ``patterns`` module (and with it pandas) is imported only when a pattern runs: a sync
with ``--no-patterns`` never loads it. It is imported with garbage collection held
(``collector.importing``): it lives as long as the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from fulcrum_sync.catalog import ContextDef
from fulcrum_sync.collector import importing
from fulcrum_sync.domain import ContextResult, PatternRunResult
from fulcrum_sync.services.jobs.keys import Overrides, pattern_keys
from fulcrum_sync.services.jobs.runner import RunContext
from fulcrum_sync.store.runs import Claim

if TYPE_CHECKING:
    from fulcrum_sync.services.patterns.inputs import ContextData


@dataclass(frozen=True, slots=True)
class PatternStep:
    """Whether a run analyses what it synced (not with ``--no-patterns``), and with which
    patterns (``overrides`` replace registered ones of the same name: tests, via ``Deps``).
    """

    enabled: bool = True
    overrides: Overrides = None

    def run(
        self,
        rc: RunContext,
        ctx: ContextDef,
        period: date,
        *,
        skip_dimensions: frozenset[str] = frozenset(),
        data: ContextData | None = None,
        claims: Mapping[str, Claim] | None = None,
    ) -> list[PatternRunResult]:
        """Run ``ctx``'s patterns for ``period`` (nothing when disabled); ``claims``: its
        pattern keys claimed already (with its sync's writes)."""
        if not self.enabled:
            return []
        with importing():
            from fulcrum_sync.services.patterns.run import run_context_patterns

        return run_context_patterns(
            rc,
            ctx,
            period,
            skip_dimensions=skip_dimensions,
            data=data,
            overrides=self.overrides,
            claims=claims,
        )

    def after(
        self,
        rc: RunContext,
        ctx: ContextDef,
        res: ContextResult,
        claims: Mapping[str, Claim] | None = None,
    ) -> None:
        """Run the patterns of ``res.period`` for a context synced (or done) earlier; a
        dimension whose sync failed skips its own patterns. Appends to ``res.patterns``."""
        skip = frozenset(res.dimensions_failed)
        res.patterns.extend(self.run(rc, ctx, res.period, skip_dimensions=skip, claims=claims))

    def keys(
        self, ctx: ContextDef, period: date, skip_dimensions: frozenset[str] = frozenset()
    ) -> set[str]:
        """The pattern run keys of ``ctx`` for ``period`` (none when disabled), but those of
        ``skip_dimensions``; made without importing the patterns (pandas)."""
        if not self.enabled:
            return set()
        items = pattern_keys(ctx, period, self.overrides, skip_dimensions)
        return {item.run_key for item in items}

    def preload(self, rc: RunContext, ctx: ContextDef, periods: list[date]) -> ContextData | None:
        """The stored data ``ctx``'s patterns read for ``periods``, read once for all."""
        if not self.enabled:
            return None
        with importing():
            from fulcrum_sync.services.patterns.inputs import preloaded

        return preloaded(rc.engine, ctx, periods)


NO_PATTERNS = PatternStep(enabled=False)
