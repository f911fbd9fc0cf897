"""What every command shares: options, the deps lookup, logging set-up, output modes, SIGTERM,
and the one function that turns outcomes and errors into exit codes (SPEC §2).

Exit codes: 0 everything asked for succeeded; 1 the run finished but something failed (the
rest committed), or an unexpected internal error; 2 bad usage or configuration, nothing
done; 3 a dependency was unreachable; 143 stopped by SIGTERM/SIGINT after finishing the
work in flight (unfinished keys released).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException

from fulcrum_sync.domain import (
    DependencyError,
    FulcrumError,
    Grain,
    InputError,
    check_period,
    last_complete_period,
    parse_period,
)
from fulcrum_sync.services.deps import Deps

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_DEPENDENCY = 0, 1, 2, 3
EXIT_INTERRUPTED = 143  # stopped by SIGTERM/SIGINT; unfinished keys were released

_OUTCOME_CODES = {
    "succeeded": EXIT_OK,
    "partial": EXIT_PARTIAL,
    "failed": EXIT_DEPENDENCY,
    "interrupted": EXIT_INTERRUPTED,
}

P = ParamSpec("P")
R = TypeVar("R")


def exit_code(outcome: str | BaseException) -> int:
    """The exit code of a run's outcome (``succeeded``, ``partial``, ...) or of an error."""
    if isinstance(outcome, InputError):
        return EXIT_USAGE
    if isinstance(outcome, DependencyError):
        return EXIT_DEPENDENCY
    if isinstance(outcome, BaseException):
        return EXIT_PARTIAL  # an internal error: reported as one line, never a traceback
    return _OUTCOME_CODES.get(outcome, EXIT_INTERRUPTED)


def finish(outcome: str) -> None:
    """End the command with the exit code of ``outcome``."""
    raise typer.Exit(exit_code(outcome))


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every error into one line on stderr and its exit code; never a traceback.

    Our own errors print their message; anything else prints ``internal error`` with its
    type and message (``--verbose`` adds the traceback).
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except FulcrumError as exc:
            _say(f"Error: {exc}")
            raise typer.Exit(exit_code(exc)) from None
        except Exception as exc:
            from fulcrum_sync.secrets import redact

            if _verbose(args, kwargs):
                _say(redact("".join(traceback.format_exception(exc))))
            _say(
                redact(
                    f"Error: internal error: {type(exc).__name__}: {exc} "
                    "(run with --verbose for the traceback)"
                )
            )
            raise typer.Exit(exit_code(exc)) from None

    return wrapper


def _say(text: str) -> None:
    from fulcrum_sync.render.console import stderr_console

    stderr_console().print(text, markup=False, highlight=False)


def _verbose(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``--verbose`` was given, from the command's typer.Context argument if any."""
    ctx = next((a for a in (*args, *kwargs.values()) if hasattr(a, "find_root")), None)
    deps = ctx.find_root().obj if ctx is not None else None
    return bool(getattr(deps, "verbose", False))


def deps_of(ctx: typer.Context) -> Deps:
    """The command's dependencies: injected by tests through ``obj``, else built lazily."""
    deps = ctx.find_root().obj
    if not isinstance(deps, Deps):
        deps = Deps()
        ctx.find_root().obj = deps
    return deps


class Output(Enum):
    """Where a command's result goes."""

    JSON = "json"  # --json: one JSON document on stdout (logs to stderr)
    TABLE = "table"  # a person: tables on stdout
    LOG = "log"  # a job in JSON log mode: JSON lines on stdout, closing with a summary event


def check_log_format(value: str | None) -> str | None:
    """Refuse a ``--log-format`` other than auto, rich or json."""
    if value is not None and value not in ("auto", "rich", "json"):
        raise InputError(f"invalid --log-format {value!r}: expected auto, rich or json")
    return value


def begin(
    ctx: typer.Context, log_format: str | None = None, *, json_out: bool = False, job: bool = False
) -> Output:
    """Set up logging for a command and say where its result goes.

    Jobs (sync, backfill, patterns, cache-load, discover) in JSON log mode write only JSON
    lines to stdout: an event per context and a closing summary event. ``--json`` output and
    reports keep stdout for themselves and log to stderr.
    """
    from fulcrum_sync.logs import configure_logging, register_secrets_from

    deps = deps_of(ctx)
    settings = deps.get_settings()
    register_secrets_from(settings)
    fmt = check_log_format(log_format) or deps.log_format or settings.log_format
    if json_out or not job:
        configure_logging(fmt, verbose=deps.verbose, stream=sys.stderr, quiet=True)  # type: ignore[arg-type]
        return Output.JSON if json_out else Output.TABLE
    if fmt == "auto" and not _isatty(sys.stderr):
        fmt = "json"
    if fmt == "json":
        configure_logging("json", verbose=deps.verbose)
        return Output.LOG
    # People at a terminal read the summary table; per-context events need --verbose.
    configure_logging("rich", verbose=deps.verbose, quiet=True)
    return Output.TABLE


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def emit(
    output: Output,
    *,
    data: Callable[[], Any],
    table: Callable[[], None],
    event: str,
    fields: Callable[[], dict[str, Any]],
) -> None:
    """Print a job's result the way ``output`` says: JSON document, tables or a log event."""
    if output is Output.JSON:
        from fulcrum_sync.render.console import print_json

        print_json(data())
    elif output is Output.TABLE:
        table()
    else:
        from fulcrum_sync.logs import log_event

        log_event(logging.getLogger("fulcrum_sync.cli"), event, **fields())


def resolve_period(
    grain: Grain, text: str | None, history_start: date, now: datetime | None = None
) -> date:
    """Parse ``--period`` (default: the last complete one); refuse one not complete or too early.

    :param now: the current time (``Settings.now()``: FULCRUM_SYNC_TODAY moves it).
    """
    period = parse_period(grain, text) if text is not None else last_complete_period(grain, now)
    check_period(grain, period, history_start, now)
    return period


def parse_grain(value: str | None) -> Grain | None:
    """Parse a --grain option (None stays None)."""
    return None if value is None else Grain.parse(value)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """Set the yielded event on SIGTERM/SIGINT: work in flight finishes, nothing new starts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        stop.set()
        name = signal.Signals(signum).name
        _say(f"Received {name}: finishing work in flight, releasing the rest.")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- options

GrainOption = Annotated[
    str, typer.Option("--grain", "-g", help="day, week or month (aliases: daily, weekly, monthly).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="auto, rich or json; the same as the global option, accepted here too.",
    ),
]
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
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run again run keys that already succeeded.")
]
