"""Sync one context for one period: decide FULL or INCREMENTAL per series, fetch, clean, store."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine

from fulcrum_sync.catalog import ContextDef, DimensionDef
from fulcrum_sync.config import Settings
from fulcrum_sync.domain import (
    ContextResult,
    Grain,
    RefusedError,
    SeriesResult,
    SkipCounts,
    StopRequested,
    SyncType,
    Window,
    compute_window,
    sync_run_key,
)
from fulcrum_sync.services.run.pending import (
    PendingContext,
    key_done,
    mark_failed,
    settle_status,
)
from fulcrum_sync.sources.base import (
    FetchOutcome,
    FetchRequest,
    SeriesColumns,
    SeriesRow,
    Source,
    fetch_all,
)
from fulcrum_sync.store import sync_status
from fulcrum_sync.store.digests import CleanRows, Columns
from fulcrum_sync.store.series import CleanRow, SeriesKey
from fulcrum_sync.store.sync_write import SeriesWrite
from fulcrum_sync.store.tables import NO_DIMENSION


def decide_sync_type(
    previous: sync_status.SeriesStatus | None, definition_hash: str, force_full: bool
) -> SyncType:
    """FULL without an earlier success, with ``--force-full``, or after a definition change."""
    if force_full or previous is None or previous.last_success_at is None:
        return SyncType.FULL
    if previous.last_success_hash != definition_hash:
        return SyncType.FULL
    return SyncType.INCREMENTAL


def sanitize(rows: Sequence[SeriesRow], dimensional: bool) -> tuple[Sequence[CleanRow], SkipCounts]:
    """Drop null, non-finite and slice-less rows; keep the last row per key; count each skip."""
    clean = _sanitize_clean(rows, dimensional)
    if clean is not None:
        return clean
    skipped = SkipCounts()
    kept: dict[Any, float] = {}  # key -> value; a repeated key keeps its first place
    accepted = 0
    isfinite = math.isfinite
    for row in rows:  # (date, value, slice): by position, the hot loop of every sync
        value = row[1]
        if type(value) is not float:  # what sources return; anything else is converted
            if value is None:
                skipped.null_value += 1
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                skipped.non_finite += 1
                continue
        if not isfinite(value):
            skipped.non_finite += 1
            continue
        if dimensional:
            if row[2] is None:
                skipped.null_slice += 1
                continue
            kept[(row[0], str(row[2]))] = value
        else:
            kept[row[0]] = value
        accepted += 1
    skipped.duplicate = accepted - len(kept)
    if dimensional:
        return [(d, s, v) for (d, s), v in kept.items()], skipped
    return list(kept.items()), skipped


def _sanitize_clean(
    rows: Sequence[SeriesRow], dimensional: bool
) -> tuple[Sequence[CleanRow], SkipCounts] | None:
    """``sanitize`` of rows with nothing to drop (every value a finite float, every slice a
    str), column by column at C speed; None for any other rows (``sanitize`` then goes row
    by row). Repeated keys are kept as there: the last value, in the first place. Rows
    without repeated keys come as :class:`CleanRows`, with the columns digests read."""
    if not rows:
        return None
    if isinstance(rows, SeriesColumns) and rows.clean and dimensional == (rows.slices is not None):
        values = cast("Sequence[float]", rows.values)  # clean: the source checked them
        return CleanRows(
            Columns(rows.dates, values, cast("Sequence[str]", rows.slices))
        ), SkipCounts()
    # Columns a source did not vouch for are checked as they are; a list of rows (Cube's) is
    # taken apart first, a pass each in C.
    columns = rows.columns if isinstance(rows, SeriesColumns) else list(zip(*rows, strict=False))
    if len(columns) < (3 if dimensional else 2) or set(map(type, columns[1])) != _FLOAT:
        return None
    if not math.isfinite(sum(columns[1])):  # a NaN or infinity makes the sum one too
        return None
    dates, values = columns[0], columns[1]
    if not dimensional:
        if len(set(dates)) == len(rows):
            return CleanRows(Columns(dates, values, None)), SkipCounts()
        kept: dict[Any, float] = dict(zip(dates, values, strict=True))
        return list(kept.items()), SkipCounts(duplicate=len(rows) - len(kept))
    slices = columns[2]
    if set(map(type, slices)) != _STR:
        return None
    if len(set(zip(dates, slices, strict=True))) == len(rows):
        return CleanRows(Columns(dates, values, slices)), SkipCounts()
    kept = dict(zip(zip(dates, slices, strict=True), values, strict=True))
    return [(d, s, v) for (d, s), v in kept.items()], SkipCounts(duplicate=len(rows) - len(kept))


_FLOAT, _STR = {float}, {str}


def plan_series(
    ctx: ContextDef,
    period: date,
    statuses: dict[str, sync_status.SeriesStatus],
    settings: Settings,
    force_full: bool,
    window: Window | None = None,
) -> list[tuple[DimensionDef | None, SyncType, Window]]:
    """Return (dimension or None for the base, sync type, window) for every series of ``ctx``.

    ``window`` replaces the lookback window (backfills fetch a whole stretch of periods).
    """
    plan = []
    for dim in (None, *ctx.metric.dimensions):
        previous = statuses.get(dim.dimension_id if dim else NO_DIMENSION)
        sync_type = decide_sync_type(previous, ctx.series_hash(dim), force_full)
        series_window = window or compute_window(
            ctx.grain, period, sync_type, settings.history_start, settings.lookback
        )
        plan.append((dim, sync_type, series_window))
    return plan


def sync_context(
    engine: Engine,
    source: Source,
    ctx: ContextDef,
    period: date,
    settings: Settings,
    *,
    force_full: bool = False,
    run_id: str | None = None,
    window: Window | None = None,
    statuses: dict[str, sync_status.SeriesStatus] | None = None,
    owner: str | None = None,
    also: Callable[[Connection, ContextResult], object] | None = None,
) -> ContextResult:
    """Sync the base series and then every dimension of ``ctx``; never raises for one series.

    A failing dimension does not stop the base series or the other dimensions; a refused
    credential (RefusedError) is raised, since no other series would fare better. With
    ``window`` (a backfill stretch ending in ``period``) every series fetches that window and
    is upserted, so stored periods outside it stay as they are.

    Every series is fetched first (:func:`fetch_context`), then all are stored with their
    statuses in one transaction (``context_store.store_context``); with ``owner`` (the lease
    owner of the context's claimed run key) the key is completed in it too
    (``result.key_done``), and ``also(conn, result)`` runs in it (the sync claims the
    context's pattern keys). ``statuses`` are the context's series statuses when the caller
    read them already (a sync reads them once per run).
    """
    from fulcrum_sync.services.run.context_store import store_context

    pending = fetch_context(
        engine,
        source,
        ctx,
        period,
        settings,
        force_full=force_full,
        run_id=run_id,
        window=window,
        statuses=statuses,
        owner=owner,
    )
    return store_context(engine, pending, also)


def fetch_context(
    engine: Engine,
    source: Source,
    ctx: ContextDef,
    period: date,
    settings: Settings,
    *,
    force_full: bool = False,
    run_id: str | None = None,
    window: Window | None = None,
    statuses: dict[str, sync_status.SeriesStatus] | None = None,
    owner: str | None = None,
) -> PendingContext:
    """Fetch and sanitize every series of ``ctx`` (:func:`sync_context`), storing nothing:
    the context is stored later, alone or with others (services/run/write_batch.py)."""
    grain: Grain = ctx.grain
    result = ContextResult(
        context=ctx.context,
        grain=grain,
        period=period,
        run_key=sync_run_key(grain, period, ctx.context),
        status="running",
        started_at=datetime.now(UTC),
    )
    if statuses is None:
        statuses = sync_status.read_statuses(
            engine, ctx.tenant.tenant_id, ctx.metric.metric_id, grain.value
        )
    pending = PendingContext(result, [])
    planned = plan_series(ctx, period, statuses, settings, force_full, window)
    since = compute_window(  # where the next incremental windows start: digests kept from it
        grain, period, SyncType.INCREMENTAL, settings.history_start, settings.lookback
    ).start
    # One round trip for the context's base and dimensions (Cube: one multi request).
    outcomes = fetch_all(source, [series_request(ctx, dim, w) for dim, _, w in planned])
    for (dim, sync_type, series_window), outcome in zip(planned, outcomes, strict=True):
        series, write, error = _fetch_series(
            outcome,
            ctx,
            period,
            dim,
            sync_type,
            series_window,
            statuses,
            run_id,
            upsert_only=window is not None,
            digest_from=since,
        )
        pending.fetched.append((series, write))
        if dim is None:
            result.base = series
        else:
            result.dimensions.append(series)
        if isinstance(error, RefusedError):
            pending.refused = error  # a wrong credential or URL: no other would fare better
            break
    settle_status(result)
    if owner is not None and pending.refused is None:
        pending.done = key_done(result, owner)
    return pending


def series_request(ctx: ContextDef, dim: DimensionDef | None, window: Window) -> FetchRequest:
    """The source request of one series of ``ctx`` (its base when ``dim`` is None)."""
    return FetchRequest(
        tenant_id=ctx.tenant.tenant_id,
        tenant=ctx.tenant.identifier,
        metric=ctx.metric,
        grain=ctx.grain,
        window=window,
        dimension=dim,
        filters=ctx.tenant.filters,
    )


def _fetch_series(
    outcome: FetchOutcome,
    ctx: ContextDef,
    period: date,
    dim: DimensionDef | None,
    sync_type: SyncType,
    window: Window,
    statuses: dict[str, sync_status.SeriesStatus],
    run_id: str | None,
    *,
    upsert_only: bool = False,
    digest_from: date | None = None,
) -> tuple[SeriesResult, SeriesWrite, Exception | None]:
    """Sanitize one fetched series (``outcome``: its rows or its error); return its result,
    what to store, and its error."""
    dim_id = dim.dimension_id if dim else None
    series = SeriesResult(dimension=dim_id, sync_type=sync_type, window=window)
    status = sync_status.StatusUpdate(
        key=(ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value, dim_id or ""),
        previous=statuses.get(dim_id or NO_DIMENSION),
        sync_type=sync_type.value,
        period=period,
        window=(window.start, window.end),
        definition_hash=ctx.series_hash(dim),
        run_id=run_id,
    )
    key = SeriesKey(ctx.tenant.tenant_id, ctx.metric.metric_id, ctx.grain.value, dim_id)
    try:
        if isinstance(outcome, Exception):
            raise outcome
        rows = outcome
        series.rows_fetched = len(rows)
        clean, series.skipped = sanitize(rows, dimensional=dim is not None)
    except StopRequested:
        raise  # SIGTERM during a wait: the context is abandoned unstored, its key released
    except Exception as exc:  # isolation: one series failing never stops the others
        mark_failed(series, exc)
        write = SeriesWrite(key, status, None, rows_fetched=series.rows_fetched, error=series.error)
        return series, write, exc
    full = sync_type is SyncType.FULL and not upsert_only
    write = SeriesWrite(
        key,
        status,
        clean,
        full=full,
        rows_fetched=series.rows_fetched,
        rows_skipped=series.skipped.total,
        digest_from=digest_from,
    )
    return series, write, None


def source_down_reason(source: Source, result: ContextResult) -> str | None:
    """Why the run must stop when ``result`` failed because the source is down, else None."""
    error = next((s.error for s in result.series if s.source_down), None)
    if error is None:
        return None
    stats = source.stats()
    if stats.down_since is None:  # up again, or other endpoints still answer (per tenant)
        return None
    return f"the source is down since {stats.down_since:%Y-%m-%d %H:%M:%SZ}: {stats.down_cause}"
