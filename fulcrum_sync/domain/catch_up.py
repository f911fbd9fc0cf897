"""Catching up: the periods a context missed, how many one run takes, and the literal commands
that fix what is left (``sync`` names the backfill beyond its bound; ``status`` suggests a fix
for each problem it shows)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import date

from fulcrum_sync.domain.periods import Grain, iter_periods, period_label, shift_period


def missed_periods(grain: Grain, latest: date | None, target: date) -> list[date]:
    """Every period after ``latest`` up to ``target``, oldest first.

    Without an earlier success (``latest`` None), or when ``latest`` is not before
    ``target``, only ``target``: a first sync is FULL and brings the history with it.
    """
    if latest is None or latest >= target:
        return [target]
    return list(iter_periods(grain, shift_period(grain, latest, 1), target))


def command(*args: str) -> str:
    """``fulcrum-sync ARGS`` quoted for a shell."""
    return shlex.join(["fulcrum-sync", *args])


def _scope(tenant: str | None, metric: str | None) -> list[str]:
    return [*(["--tenant", tenant] if tenant else []), *(["--metric", metric] if metric else [])]


def catch_up_command(
    grain: Grain, tenant: str | None = None, metric: str | None = None, *, cache_load: bool = False
) -> str:
    """The catch-up of one context (or scope): every missed period, oldest first; with
    ``cache_load``, then its cache table, as the scheduled jobs do."""
    flags = ["--catch-up", *(["--cache-load"] if cache_load else [])]
    return command("sync", "--grain", grain.value, *flags, *_scope(tenant, metric))


def sync_command(
    grain: Grain,
    tenant: str | None = None,
    metric: str | None = None,
    period: date | None = None,
    *,
    force: bool = False,
) -> str:
    """A plain sync of one period (default: the last complete one)."""
    args = ["sync", "--grain", grain.value]
    if period is not None:
        args += ["--period", period_label(grain, period)]
    return command(*args, *_scope(tenant, metric), *(["--force"] if force else []))


def backfill_command(
    grain: Grain, start: date, end: date, tenant: str | None = None, metric: str | None = None
) -> str:
    """A backfill of ``start..end`` (inclusive)."""
    return command(
        "backfill",
        "--grain",
        grain.value,
        "--start",
        period_label(grain, start),
        "--end",
        period_label(grain, end),
        *_scope(tenant, metric),
    )


def patterns_command(grain: Grain, period: date, tenant: str, metric: str) -> str:
    """The patterns of one context and period, on stored data (unfinished keys only)."""
    args = ["patterns", "run", "--grain", grain.value, "--period", period_label(grain, period)]
    return command(*args, *_scope(tenant, metric))


def cache_load_command(
    grain: Grain, tenant: str, metric: str, target: str | None = None, *, force: bool = False
) -> str:
    """The cache load of one context (it loads only if the series changed, unless forced)."""
    args = ["cache-load", "--grain", grain.value, *_scope(tenant, metric)]
    args += ["--target", target] if target else []
    return command(*args, *(["--force"] if force else []))


@dataclass(frozen=True, slots=True)
class CatchUpRest:
    """Periods beyond a catch-up's bound, and the backfill that covers them."""

    grain: Grain
    start: date
    end: date
    contexts: list[str] = field(default_factory=list)  # tenant::metric
    command: str = ""

    @property
    def periods(self) -> int:
        return len(list(iter_periods(self.grain, self.start, self.end)))


def rest_of(grain: Grain, start: date, end: date, contexts: list[str]) -> CatchUpRest:
    """The periods ``start..end`` the ``contexts`` have left, with one backfill covering them.

    The backfill is scoped to a tenant (and a metric) when all contexts share it; otherwise
    it covers the range for every context, whose keys already done are skipped.
    """
    tenants = {c.split("::", 1)[0] for c in contexts}
    metrics = {c.split("::", 1)[1] for c in contexts}
    tenant = next(iter(tenants)) if len(tenants) == 1 else None
    metric = next(iter(metrics)) if len(metrics) == 1 and tenant else None
    return CatchUpRest(
        grain, start, end, sorted(contexts), backfill_command(grain, start, end, tenant, metric)
    )
