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
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException

from fulcrum_sync.cli._deps import deps_of
from fulcrum_sync.domain import (
    DependencyError,
    FulcrumError,
    Grain,
    Health,
    InputError,
    RunOutcome,
    StopRequested,
    check_period,
    last_complete_period,
    parse_period,
)

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_DEPENDENCY = 0, 1, 2, 3
EXIT_INTERRUPTED = 143  # stopped by SIGTERM/SIGINT; unfinished keys were released

#: The exit code of each run outcome (tests/cli/test_exit_codes.py checks every member).
OUTCOME_CODES: dict[RunOutcome, int] = {
    RunOutcome.SUCCEEDED: EXIT_OK,
    RunOutcome.PARTIAL: EXIT_PARTIAL,
    RunOutcome.FAILED: EXIT_DEPENDENCY,
    RunOutcome.REFUSED: EXIT_USAGE,  # the source refused our credentials: a setting is wrong
    RunOutcome.INVALID: EXIT_USAGE,  # a check found bad configuration (doctor)
    RunOutcome.INTERRUPTED: EXIT_INTERRUPTED,
    # Never the outcome of the command that ends: a run still recorded as running, or one
    # closed as abandoned, is one that died; if one is ever handed here, it did not succeed.
    RunOutcome.RUNNING: EXIT_PARTIAL,
    RunOutcome.ABANDONED: EXIT_PARTIAL,
}

#: The exit code of each health ``status`` reports (tests/cli check every member).
HEALTH_CODES: dict[Health, int] = {
    Health.HEALTHY: EXIT_OK,
    Health.HEALING: EXIT_OK,  # the next scheduled run fixes it by itself
    Health.NEEDS_ATTENTION: EXIT_PARTIAL,
    Health.NOTHING_TO_WATCH: EXIT_USAGE,
}

P = ParamSpec("P")
R = TypeVar("R")


def exit_code(outcome: RunOutcome | BaseException) -> int:
    """The exit code of a run's outcome or of an error: the one decision (SPEC §2)."""
    if isinstance(outcome, StopRequested):
        return EXIT_INTERRUPTED  # a wait woke on SIGTERM: interrupted like any other
    if isinstance(outcome, InputError):
        return EXIT_USAGE
    if isinstance(outcome, DependencyError):
        return EXIT_DEPENDENCY
    if isinstance(outcome, BaseException):
        return EXIT_PARTIAL  # an internal error: reported as one line, never a traceback
    return OUTCOME_CODES[RunOutcome(outcome)]  # a word that is no outcome raises, loudly


def finish(outcome: RunOutcome) -> None:
    """End the command with the exit code of ``outcome``."""
    raise typer.Exit(exit_code(outcome))


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every error into one line on stderr and its exit code; never a traceback.

    Our own errors print their message; anything else prints ``internal error`` with its
    type and message (``--verbose`` adds the traceback).
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from fulcrum_sync.cli._push import pushing  # job commands push metrics as they end

        with pushing(_context(args, kwargs)):
            return _run(func, args, kwargs)

    return wrapper


def _run(func: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
    """Run a command; turn its errors into one line and an exit code (see handle_errors)."""
    try:
        return func(*args, **kwargs)
    except (typer.Exit, typer.Abort, TyperException):
        raise
    except FulcrumError as exc:
        _fail(_context(args, kwargs), f"Error: {exc}", exit_code(exc))
    except Exception as exc:
        from fulcrum_sync.secrets import redact

        ctx = _context(args, kwargs)
        if getattr(ctx.find_root().obj if ctx else None, "verbose", False):
            _say(redact("".join(traceback.format_exception(exc))))
        _fail(
            ctx,
            f"Error: internal error: {type(exc).__name__}: {exc} "
            "(run with --verbose for the traceback)",
            exit_code(exc),
        )


def _context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> typer.Context | None:
    # Typer hands commands its click context (typer.Context's base class): match by shape.
    found = (a for a in (*args, *kwargs.values()) if hasattr(a, "find_root"))
    return next(found, None)


def _fail(ctx: typer.Context | None, line: str, code: int) -> NoReturn:
    """Say in one line on stderr why the command failed, and exit.

    A job writing JSON log lines to stdout (a pod) that failed for a reason other than bad
    usage (a dependency down, an internal error) also says it as one ``error`` event there,
    so the alert on ``level="error"`` fires.
    """
    from fulcrum_sync.logs import json_logging_to_stdout, log_event
    from fulcrum_sync.secrets import redact

    line = redact(line)
    if code != EXIT_USAGE and json_logging_to_stdout():
        command = ctx.command_path.split(" ", 1)[-1] if ctx else "command"
        log = logging.getLogger("fulcrum_sync.cli")
        log_event(log, f"{command} failed", logging.ERROR, error=line, exit_code=code)
    _say(line)
    raise typer.Exit(code) from None


def _say(text: str) -> None:
    from fulcrum_sync.render.console import stderr_console

    stderr_console().print(text, markup=False, highlight=False)


class Output(Enum):
    """Where a command's result goes."""

    JSON = "json"  # --json: one JSON document on stdout (logs to stderr)
    TABLE = "table"  # a person: tables on stdout
    LOG = "log"  # a job in JSON log mode: JSON lines on stdout, closing with a summary event


def check_log_format(value: str | None) -> str | None:
    """Refuse a ``--log-format`` other than auto, rich or json (the one check of the flag:
    it is declared once, on the root, and ``cli._root`` moves it there from after a
    command)."""
    if value is not None and value not in ("auto", "rich", "json"):
        raise InputError(f"invalid --log-format {value!r}: expected auto, rich or json")
    return value


def begin(ctx: typer.Context, *, json_out: bool = False, job: bool = False) -> Output:
    """Set up logging for a command and say where its result goes.

    Jobs (sync, backfill, patterns, cache-load, discover) in JSON log mode write only JSON
    lines to stdout: an event per context and a closing summary event. ``--json`` output and
    reports keep stdout for themselves and log to stderr.
    """
    from fulcrum_sync.collector import release
    from fulcrum_sync.logs import configure_logging
    from fulcrum_sync.secrets import register_secrets_from

    deps = deps_of(ctx)
    settings = deps.get_settings()
    register_secrets_from(settings)
    release()  # the command is set up: garbage collection as usual (collector.py)
    fmt = deps.log_format or settings.log_format  # --log-format (the root's), else the setting
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
    """Print a job's result the way ``output`` says: JSON document, tables or a log event.

    The closing log event is at ``error`` level when the run did not succeed (``warning``
    when it was interrupted), so an alert on ``level="error"`` fires for every failed run.
    """
    if output is Output.JSON:
        from fulcrum_sync.render.console import print_json

        print_json(data())
    elif output is Output.TABLE:
        table()
    else:
        from fulcrum_sync.logs import log_event

        values = fields()
        outcome = RunOutcome(values.get("outcome", RunOutcome.SUCCEEDED))
        level = {RunOutcome.SUCCEEDED: logging.INFO, RunOutcome.INTERRUPTED: logging.WARNING}.get(
            outcome, logging.ERROR
        )
        log_event(logging.getLogger("fulcrum_sync.cli"), event, level, **values)


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
def stop_on_sigterm(signalled: threading.Event | None = None) -> Iterator[threading.Event]:
    """Set the yielded event on SIGTERM/SIGINT: work in flight finishes, nothing new starts.

    :param signalled: also set on the signal (``Deps.stop``: the source's waits wake on it).
        The yielded event is the run's own: a run that halts (a dependency down) sets it
        without waking the source's waits.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        stop.set()
        if signalled is not None:
            signalled.set()
        name = signal.Signals(signum).name
        from fulcrum_sync.render.console import say_above_progress

        say_above_progress(f"Received {name}: finishing work in flight, releasing the rest.")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
