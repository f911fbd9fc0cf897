"""The ``fulcrum-sync`` command line: parse arguments, call one service, print its result.

Exit codes: 0 all done; 1 some contexts, dimensions or patterns failed (the rest committed);
2 bad usage or configuration (nothing done); 3 a dependency was unreachable (nothing done).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from fulcrum_sync.domain import (
    DependencyError,
    FulcrumError,
    Grain,
    InputError,
    SyncRequest,
    format_period,
    last_complete_period,
    parse_period,
    period_start,
)
from fulcrum_sync.render import print_json, print_table, stderr_console, stdout_console
from fulcrum_sync.services.deps import Deps

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_DEPENDENCY = 0, 1, 2, 3
EXIT_INTERRUPTED = 143  # stopped by SIGTERM/SIGINT; unfinished keys were released

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="fulcrum-sync",
    help="Keep a metrics platform's time series, Snowflake cache and patterns fresh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
catalog_app = typer.Typer(help="Import tenants and metric definitions.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the state database schema.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")


def exit_code_for(error: BaseException) -> int:
    """Map an error to the exit code of SPEC §2."""
    if isinstance(error, InputError):
        return EXIT_USAGE
    if isinstance(error, DependencyError):
        return EXIT_DEPENDENCY
    return EXIT_DEPENDENCY


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors into one line on stderr and the matching exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FulcrumError as exc:
            stderr_console().print(f"Error: {exc}", markup=False, highlight=False)
            raise typer.Exit(exit_code_for(exc)) from None

    return wrapper


def _deps(ctx: typer.Context) -> Deps:
    deps = ctx.find_root().obj
    if not isinstance(deps, Deps):
        deps = Deps()
        ctx.find_root().obj = deps
    return deps


def run_exit_code(outcome: str) -> int:
    """Exit code of a finished run: see the module docstring; 143 when stopped by SIGTERM."""
    return {"succeeded": EXIT_OK, "partial": EXIT_PARTIAL, "failed": EXIT_DEPENDENCY}.get(
        outcome, EXIT_INTERRUPTED
    )


def resolve_period(grain: Grain, text: str | None, history_start: date) -> date:
    """Parse ``--period`` (default: the last complete period); refuse one before history."""
    period = parse_period(grain, text) if text else last_complete_period(grain)
    first = period_start(grain, history_start)
    if period < first:
        raise InputError(
            f"period {format_period(grain, period)} is before the history start "
            f"{history_start.isoformat()} (FULCRUM_SYNC_HISTORY_START)"
        )
    return period


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """Set the yielded event on SIGTERM/SIGINT: work in flight finishes, nothing new starts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        stop.set()
        stderr_console().print(
            f"Received {signal.Signals(signum).name}: finishing work in flight, releasing the rest."
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _pattern_chain(deps: Deps, enabled: bool) -> Any:
    """The in-process pattern chain for ``sync`` (None with --no-patterns)."""
    if not enabled:
        return None
    from fulcrum_sync.services.patterns import make_chain

    return make_chain(deps.patterns)


LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="auto, rich or json; the same as the global option, accepted here too.",
    ),
]


def _check_log_format(value: str | None) -> str | None:
    if value is not None and value not in ("auto", "rich", "json"):
        raise InputError(f"invalid --log-format {value!r}: expected auto, rich or json")
    return value


def _begin(
    ctx: typer.Context, log_format: str | None = None, *, json_out: bool = False, job: bool = False
) -> bool:
    """Set up logging for a command; return True when human tables go to stdout.

    Jobs (sync, backfill, patterns, cache-load, discover) in JSON log mode write only JSON
    lines to stdout: an event per context and a closing summary event. ``--json`` output and
    reports keep stdout for themselves and log to stderr.
    """
    from fulcrum_sync.logs import configure_logging, register_secrets_from

    deps = _deps(ctx)
    settings = deps.get_settings()
    register_secrets_from(settings)
    fmt = _check_log_format(log_format) or deps.log_format or settings.log_format
    if json_out or not job:
        configure_logging(fmt, verbose=deps.verbose, stream=sys.stderr, quiet=True)  # type: ignore[arg-type]
        return True
    effective = configure_logging(fmt, verbose=deps.verbose, quiet=fmt == "rich")  # type: ignore[arg-type]
    if effective == "json":
        return False
    # People at a terminal read the summary table; per-context events need --verbose.
    configure_logging("rich", verbose=deps.verbose, quiet=True)
    return True


def _log_summary(event: str, **fields: Any) -> None:
    from fulcrum_sync.logs import log_event

    log_event(logging.getLogger("fulcrum_sync.cli"), event, **fields)


def parse_grain(value: str | None) -> Grain | None:
    """Parse a --grain option (None stays None)."""
    return None if value is None else Grain.parse(value)


GrainOption = Annotated[
    str, typer.Option("--grain", "-g", help="day, week or month (aliases: daily, weekly, monthly).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.callback()
def root(
    ctx: typer.Context,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="auto (JSON lines when not on a terminal), rich or json. "
            "Default: FULCRUM_SYNC_LOG_FORMAT or auto.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Log debug details; list every pattern context in discover."
        ),
    ] = False,
) -> None:
    """Keep a metrics platform's time series, Snowflake cache and patterns fresh."""
    deps = _deps(ctx)
    if log_format is not None and log_format not in ("auto", "rich", "json"):
        raise typer.BadParameter(
            f"{log_format!r} is not one of auto, rich, json", param_hint="--log-format"
        )
    deps.log_format = log_format
    deps.verbose = verbose
    ctx.call_on_close(deps.close)


@app.command()
@handle_errors
def discover(
    ctx: typer.Context,
    grain: Annotated[
        str | None,
        typer.Option("--grain", "-g", help="Only this grain (day, week, month). Default: all."),
    ] = None,
    check_source: Annotated[
        bool,
        typer.Option(
            "--check-source",
            help="Also ask the source's metadata whether every member exists.",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Store the catalog's active contexts and report what was added, deactivated, unchanged.

    Deactivated contexts keep their stored data. With an empty catalog and the demo source,
    the demo catalog is loaded first.

    Example: fulcrum-sync discover --grain day
    """
    from fulcrum_sync.services import discover as svc

    tables = _begin(ctx, json_out=json_out, job=True)
    deps = _deps(ctx)
    grain_value = parse_grain(grain)
    settings = deps.get_settings()
    engine = deps.get_engine()
    source = deps.get_source() if check_source else None
    result = svc.discover(engine, settings.source, settings.history_start, grain_value, source)
    if json_out:
        print_json(result)
    elif tables:
        _print_discover(result, verbose=deps.verbose)
    else:
        changes = result.changes
        _log_summary(
            "discover finished",
            grain=grain_value.value if grain_value else None,
            counts={
                "added": len(changes.added),
                "deactivated": len(changes.deactivated),
                "reactivated": len(changes.reactivated),
                "unchanged": changes.unchanged,
                "active_contexts": result.active_contexts,
            },
            added=changes.added,
            deactivated=changes.deactivated,
            broken_metrics=result.broken_metrics or None,
        )
    if result.broken_metrics:
        raise typer.Exit(EXIT_PARTIAL)


def _print_discover(result: Any, verbose: bool = False) -> None:
    out = stdout_console()
    if result.demo_catalog_loaded:
        excluded = (
            f"; not taking part: {', '.join(result.tenants_excluded)}"
            if result.tenants_excluded
            else ""
        )
        out.print(
            "Catalog was empty: loaded the demo catalog "
            f"(tenants taking part: {', '.join(result.tenants) or 'none'}{excluded})."
        )
    changes = result.changes
    groups = changes.by_metric_context()
    if groups:
        print_table(
            out,
            "Context changes",
            ["context", "grain", "change", "pattern contexts"],
            [
                (
                    g.context,
                    g.grain,
                    g.change,
                    ", ".join(f"{len(names)} {kind}" for kind, names in g.patterns.items()),
                )
                for g in groups
            ],
        )
    pattern_rows = [
        (f"{g.context}::{name}", g.grain, kind)
        for g in groups
        for kind, names in g.patterns.items()
        for name in names
    ]
    if pattern_rows and verbose:
        print_table(out, "Pattern context changes", ["context", "grain", "change"], pattern_rows)
    elif pattern_rows:
        out.print(
            f"{len(pattern_rows)} pattern context changes counted above "
            "(list them with fulcrum-sync --verbose discover)."
        )
    scope = result.grain.value if result.grain else "all grains"
    out.print(
        f"{len(changes.added)} added, {len(changes.deactivated)} deactivated, "
        f"{len(changes.reactivated)} reactivated, {changes.unchanged} unchanged "
        f"({result.active_contexts} active contexts, {result.active_pattern_contexts} "
        f"pattern contexts, {scope})"
    )
    if result.checked_source:
        if result.broken_metrics:
            print_table(
                out,
                "Metrics the source cannot serve",
                ["context", "missing members"],
                [(k, ", ".join(v)) for k, v in sorted(result.broken_metrics.items())],
            )
        else:
            out.print("Source check: every measure, time dimension and dimension exists.")


@catalog_app.command("load")
@handle_errors
def catalog_load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Catalog YAML file.", dir_okay=False)],
    json_out: JsonOption = False,
) -> None:
    """Validate a catalog YAML file and make it the stored catalog (replacing the old one).

    Metrics missing from the file stop being discovered; their stored data stays.

    Example: fulcrum-sync catalog load catalog.yaml
    """
    from fulcrum_sync.services import discover as svc

    _begin(ctx)
    deps = _deps(ctx)
    settings = deps.get_settings()
    from fulcrum_sync.catalog import read_catalog

    parsed = read_catalog(file)  # validate before touching the database
    result = svc.save_catalog(deps.get_engine(), parsed, settings.history_start)
    if json_out:
        print_json(result)
        return
    out = stdout_console()
    out.print(
        f"Loaded {file}: {result.tenants} tenants, {result.metrics} metrics, "
        f"{result.targets} target periods."
    )
    for label, names in (
        ("added", result.metrics_added),
        ("changed", result.metrics_changed),
        ("removed", result.metrics_removed),
    ):
        if names:
            out.print(f"Metrics {label}: {', '.join(names)}")
    out.print("Run `fulcrum-sync discover` to update the active contexts.")


@db_app.command("upgrade")
@handle_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the state database schema to the newest revision.

    Example: FULCRUM_SYNC_DATABASE_URL=postgresql+psycopg://user@db/fulcrum fulcrum-sync db upgrade
    """
    from fulcrum_sync.store.engine import current_revision, open_engine, upgrade

    _begin(ctx)
    deps = _deps(ctx)
    settings = deps.get_settings()
    engine = deps.engine or open_engine(settings.database_url.get_secret_value(), migrate=False)
    try:
        before = current_revision(engine)
        after = upgrade(engine)
    finally:
        if engine is not deps.engine:
            engine.dispose()
    where = f"Database {settings.masked_database_url}"
    if before == after:
        stdout_console().print(f"{where}: schema already at {after}; nothing to do.")
    else:
        stdout_console().print(f"{where}: schema {before or 'empty'} -> {after}.")


PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        "-p",
        help="2025-07-13, 2025-W28 (ISO week) or 2025-07; any date inside the period works. "
        "Default: the last complete period (UTC).",
    ),
]
TenantOption = Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant.")]
MetricOption = Annotated[str | None, typer.Option("--metric", "-m", help="Only this metric.")]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        min=1,
        max=64,
        help="Contexts worked at once. 1 runs everything in the main thread (debuggers). "
        "Default: FULCRUM_SYNC_WORKERS.",
    ),
]


@app.command()
@handle_errors
def sync(
    ctx: typer.Context,
    grain: GrainOption,
    period: PeriodOption = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    force_full: Annotated[
        bool, typer.Option("--force-full", help="FULL sync every series (re-fetch history).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run again run keys that already succeeded.")
    ] = False,
    workers: WorkersOption = None,
    no_patterns: Annotated[
        bool, typer.Option("--no-patterns", help="Do not run the patterns after each sync.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be fetched; write nothing.")
    ] = False,
    json_out: JsonOption = False,
    log_format: LogFormatOption = None,
) -> None:
    """Sync every active context of a grain for one period, then run its patterns.

    Per metric and per dimension the sync is FULL (no earlier success, --force-full, or a
    changed definition) or INCREMENTAL. Exit 0 all succeeded, 1 some failed, 2 bad usage,
    3 source or database unreachable.

    Example: fulcrum-sync sync --grain day --period 2025-07-13 --tenant acme
    """
    from fulcrum_sync import render
    from fulcrum_sync.services import sync as sync_service

    tables = _begin(ctx, log_format, json_out=json_out, job=True)
    deps = _deps(ctx)
    settings = deps.get_settings()
    grain_value = Grain.parse(grain)
    request = SyncRequest(
        grain=grain_value,
        period=resolve_period(grain_value, period, settings.history_start),
        tenant=tenant,
        metric=metric,
        force_full=force_full,
        force=force,
        workers=workers or settings.workers,
        dry_run=dry_run,
        run_patterns=not no_patterns,
    )
    engine = deps.get_engine(workers=request.workers, pooled=True)
    if dry_run:
        planned = sync_service.plan(engine, settings, request)
        if json_out or not tables:
            print_json({"request": request, "planned": planned})
        else:
            render.print_sync_plan(request, planned)
        return
    source = deps.get_source()
    with stop_on_sigterm() as stop, render.SyncProgress(enabled=not json_out) as progress:
        result = sync_service.run(
            engine,
            source,
            settings,
            request,
            chain=_pattern_chain(deps, request.run_patterns),
            stop=stop,
            on_result=progress.advance,
            on_start=progress.start,
        )
    summary = render.sync_result_json(result)
    if json_out:
        print_json(summary)
    elif tables:
        render.print_sync_result(result)
    else:
        _log_summary("sync finished", **render.sync_summary_fields(summary))
    raise typer.Exit(run_exit_code(result.outcome))


@app.command()
@handle_errors
def status(
    ctx: typer.Context,
    grain: Annotated[
        str | None, typer.Option("--grain", "-g", help="Only this grain. Default: all.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Show recent runs, what is failing and since when, and how fresh each grain is.

    Exit 0 when nothing is failing or behind, 1 otherwise (so a check can alert on it).

    Example: fulcrum-sync status --grain day
    """
    from fulcrum_sync import render
    from fulcrum_sync.services import status as status_service

    _begin(ctx)
    deps = _deps(ctx)
    report = status_service.status(deps.get_engine(), parse_grain(grain))
    if json_out:
        print_json(report)
    else:
        render.print_status(report)
    unhealthy = (
        report.failing_series or report.failing_patterns or any(f.behind for f in report.freshness)
    )
    raise typer.Exit(EXIT_PARTIAL if unhealthy else EXIT_OK)


@app.command()
@handle_errors
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    command: Annotated[
        str | None, typer.Option("--command", "-c", help="Only runs of this command.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """List recent invocations: command, arguments, host, start, duration, outcome.

    Example: fulcrum-sync runs --limit 5 --command sync
    """
    from fulcrum_sync import render
    from fulcrum_sync.services import status as status_service

    _begin(ctx)
    rows = status_service.list_runs(_deps(ctx).get_engine(), limit, command)
    if json_out:
        print_json(rows)
    else:
        render.print_runs(rows)


@app.command("cache-load")
@handle_errors
def cache_load(
    ctx: typer.Context,
    grain: GrainOption,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="snowflake, or local (cache tables in the state database). "
            "Default: FULCRUM_SYNC_CACHE_TARGET (local).",
        ),
    ] = None,
    json_out: JsonOption = False,
    log_format: LogFormatOption = None,
) -> None:
    """Copy each active context's stored series into its own cache table.

    One table per tenant, metric and grain, CACHE_<TENANT>_<METRIC>_<GRAIN> (lower case in
    the local database), holds the base series and every dimension's. Each load replaces the
    table's contents atomically; a context with no stored rows is skipped. Exit 0 all loaded,
    1 some failed, 2 bad usage or settings, 3 target or database unreachable.

    Example: fulcrum-sync cache-load --grain day --target snowflake --tenant acme
    """
    from fulcrum_sync import render
    from fulcrum_sync.services import cache_load as cache_service
    from fulcrum_sync.sinks import build_sink

    tables = _begin(ctx, log_format, json_out=json_out, job=True)
    deps = _deps(ctx)
    settings = deps.get_settings()
    grain_value = Grain.parse(grain)
    target_name = (target or settings.cache_target).strip().lower()
    engine = deps.get_engine(pooled=True)
    sink = build_sink(target_name, settings, engine)
    with render.SyncProgress(enabled=not json_out, label="cache tables") as progress:
        result = cache_service.run(
            engine,
            sink,
            grain_value,
            tenant,
            metric,
            on_start=progress.start,
            on_result=progress.advance,
        )
    if json_out:
        summary: dict[str, object] = {"run_id": result.run_id, "grain": grain_value}
        summary["target"] = target_name
        summary.update(result.summary())
        print_json({**summary, "contexts": result.contexts})
    elif tables:
        _print_cache_load(result)
    else:
        _log_summary(
            "cache-load finished",
            run_id=result.run_id,
            grain=grain_value.value,
            target=target_name,
            outcome=result.outcome,
            counts=result.summary(),
        )
    raise typer.Exit(run_exit_code(result.outcome))


def _print_cache_load(result: Any) -> None:
    from fulcrum_sync.render import status_style

    out = stdout_console()
    title = f"cache-load {result.grain.value} -> {result.target}"
    if not result.contexts:
        out.print(
            f"{title}: no active contexts with the cache enabled; run `fulcrum-sync sync "
            f"--grain {result.grain.value}` (or discover) first."
        )
        return
    rows = []
    for c in sorted(result.contexts, key=lambda c: c.context):
        size = "" if c.size_mb is None else f"{'~' if c.size_estimated else ''}{c.size_mb:.3f}"
        rows.append(
            (
                c.context,
                c.table,
                c.rows,
                size,
                c.window.to_string() if c.window else "",
                f"{c.seconds:.2f}s",
                status_style(c.status),
            )
        )
    estimated = any(c.size_estimated for c in result.contexts)
    caption = "~ size estimated from the rows: the target reported none" if estimated else None
    columns = ["context", "table", "rows loaded", "size MB", "window", "load time", "status"]
    print_table(out, title, columns, rows, caption=caption)
    for c in result.contexts:
        if c.status != "succeeded":
            out.print(f"{c.status} {c.context}: {c.error or c.skip_reason}", markup=False)
    s = result.summary()
    out.print(
        f"Run {result.run_id}: {s['outcome']} ({s['succeeded']} loaded, {s['skipped']} "
        f"skipped, {s['failed']} failed; {s['rows']} rows, {s['size_mb']:.3f} MB in "
        f"{s['duration_seconds']:.2f}s).",
        markup=False,
    )


patterns_app = typer.Typer(invoke_without_command=True)
app.add_typer(patterns_app, name="patterns")


@patterns_app.callback(invoke_without_command=True)
@handle_errors
def patterns(
    ctx: typer.Context,
    grain: Annotated[
        str | None, typer.Option("--grain", "-g", help="day, week or month (required to run).")
    ] = None,
    period: PeriodOption = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    pattern: Annotated[
        str | None, typer.Option("--pattern", help="Only this pattern (see `patterns list`).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Run again patterns that already succeeded.")
    ] = False,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
    log_format: LogFormatOption = None,
) -> None:
    """Run the enabled patterns of every active context on data already stored (no fetching).

    Each pattern runs under its own run key; one failing does not stop the others. Too
    little data is stored as an insufficient_data result and reported as skipped.

    Example: fulcrum-sync patterns --grain day --period 2025-07-13 --pattern forecasting
    """
    if ctx.invoked_subcommand is not None:
        return
    tables = _begin(ctx, log_format, json_out=json_out, job=True)
    if grain is None:
        raise InputError("missing --grain: patterns needs --grain day, week or month")
    from fulcrum_sync import render, render_patterns
    from fulcrum_sync.services import patterns as svc

    deps = _deps(ctx)
    settings = deps.get_settings()
    grain_value = Grain.parse(grain)
    request = svc.PatternsRequest(
        grain=grain_value,
        period=resolve_period(grain_value, period, settings.history_start),
        tenant=tenant,
        metric=metric,
        pattern=pattern,
        force=force,
        workers=workers or settings.workers,
    )
    if pattern is not None:
        svc.get_pattern(pattern)  # fail on an unknown name before touching the database
    engine = deps.get_engine(workers=request.workers, pooled=True)
    with stop_on_sigterm() as stop, render.SyncProgress(enabled=not json_out) as progress:
        result = svc.run(
            engine,
            settings.lease_seconds,
            request,
            stop=stop,
            on_result=progress.advance,
            on_start=progress.start,
            overrides=deps.patterns,
        )
    summary = render_patterns.patterns_result_json(result)
    if json_out:
        print_json(summary)
    elif tables:
        render_patterns.print_patterns_result(result)
    else:
        _log_summary(
            "patterns finished",
            run_id=summary["run_id"],
            grain=summary["grain"],
            period=summary["period"],
            outcome=summary["outcome"],
            counts=render_patterns.totals_of(result),
        )
    raise typer.Exit(run_exit_code(result.outcome))


@patterns_app.command("list")
@handle_errors
def patterns_list(json_out: JsonOption = False) -> None:
    """List the registered patterns: name, version, grains, data needed, lookback.

    Example: fulcrum-sync patterns list
    """
    from fulcrum_sync import render_patterns
    from fulcrum_sync.patterns.registry import list_patterns

    specs = list_patterns()
    if json_out:
        print_json([render_patterns.pattern_spec_json(s) for s in specs])
    else:
        render_patterns.print_pattern_specs(specs)


@patterns_app.command("show")
@handle_errors
def patterns_show(
    ctx: typer.Context,
    context: Annotated[str, typer.Argument(help="tenant::metric, e.g. acme::new_revenue.")],
    grain: GrainOption,
    period: Annotated[
        str | None,
        typer.Option("--period", "-p", help="Analysis period. Default: the latest stored."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Show a context's stored pattern results for one period.

    Example: fulcrum-sync patterns show acme::new_revenue --grain day
    """
    from fulcrum_sync import render_patterns
    from fulcrum_sync.domain import MetricContext
    from fulcrum_sync.services import patterns as svc

    MetricContext.from_string(context)  # validate before touching the database
    grain_value = Grain.parse(grain)
    wanted = parse_period(grain_value, period) if period else None
    _begin(ctx)
    rows = svc.show(_deps(ctx).get_engine(), context, grain_value, wanted)
    if json_out:
        print_json(rows)
    else:
        render_patterns.print_pattern_results(context, grain_value, rows)


@app.command()
@handle_errors
def backfill(
    ctx: typer.Context,
    grain: GrainOption,
    start: Annotated[
        str | None,
        typer.Option("--start", help="First period, inclusive (2025-07-01, 2025-W27, 2025-07)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Last period, inclusive (same forms as --start)."),
    ] = None,
    tenant: TenantOption = None,
    metric: MetricOption = None,
    patterns: Annotated[
        bool, typer.Option("--patterns/--no-patterns", help="Run patterns for every period.")
    ] = True,
    workers: WorkersOption = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="i/n: this process takes every n-th context starting at i. Default: from "
            "JOB_COMPLETION_INDEX and FULCRUM_SYNC_SHARD_COUNT (Kubernetes Indexed Jobs).",
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Resume the backfill with this id; does only what is left."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Run again run keys that already succeeded.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and write nothing.")
    ] = False,
    json_out: JsonOption = False,
    log_format: LogFormatOption = None,
) -> None:
    """Sync and analyse a range of periods; resumable by id and shardable across pods.

    Each context's range is fetched in as few source queries as the source allows, then
    patterns run for every period on data as of that period.

    Example: fulcrum-sync backfill --grain day --start 2025-07-01 --end 2025-09-30 --workers 4
    """
    from fulcrum_sync import render_backfill
    from fulcrum_sync.render import SyncProgress
    from fulcrum_sync.services import backfill as svc

    tables = _begin(ctx, log_format, json_out=json_out, job=True)
    deps = _deps(ctx)
    settings = deps.get_settings()
    grain_value = Grain.parse(grain)
    if resume is None and (start is None or end is None):
        raise InputError("backfill needs --start and --end (or --resume ID)")
    request = svc.BackfillRequest(
        grain=grain_value,
        start=parse_period(grain_value, start) if start else settings.history_start,
        end=parse_period(grain_value, end) if end else settings.history_start,
        tenant=tenant,
        metric=metric,
        patterns=patterns,
        workers=workers or settings.workers,
        shard=svc.parse_shard(shard, shard_count=settings.shard_count),
        resume=resume,
        force=force,
        dry_run=dry_run,
    )
    if resume is None:
        svc.validate(request, settings)
    engine = deps.get_engine(workers=request.workers, pooled=True)
    if dry_run:
        plan = svc.make_plan(engine, settings, request)
        if json_out or not tables:
            print_json(render_backfill.plan_json(plan))
        else:
            render_backfill.print_plan(plan)
        return
    source = deps.get_source()
    with stop_on_sigterm() as stop, SyncProgress(enabled=not json_out, label="run keys") as bar:
        result = svc.run(
            engine,
            source,
            settings,
            request,
            stop=stop,
            on_progress=bar.update,
            on_plan=render_backfill.print_started,
        )
    if json_out:
        print_json(render_backfill.result_json(result))
    elif tables:
        render_backfill.print_result(result)
    else:
        _log_summary("backfill finished", **render_backfill.result_json(result))
        render_backfill.print_summary_line(result)  # one plain line for CI logs
    raise typer.Exit(run_exit_code(result.outcome))


def main() -> None:
    """Run the CLI (the ``fulcrum-sync`` script and ``python -m fulcrum_sync``)."""
    app()
