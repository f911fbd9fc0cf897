"""The job commands' metrics push, wrapped around the one exit path (``handle_errors``).

A job command hands its result to :func:`observe`; however the command ends (exit code,
error, SIGTERM), :func:`pushing` pushes its metrics when ``FULCRUM_SYNC_PUSHGATEWAY_URL`` is
set. See :mod:`fulcrum_sync.metrics`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import typer

JOB_COMMANDS = frozenset(
    {
        "sync",
        "patterns",
        "patterns run",
        "backfill",
        "cache-load",
        "discover",
        "verify",
        "state prune",
    }
)
_RESULT = "fulcrum_sync.job_result"
EXIT_TERMINATED = 143


def observe(ctx: typer.Context, result: object, *, contexts_behind: int | None = None) -> None:
    """Keep ``result`` (and the contexts still behind after it) for the metrics the command
    pushes as it ends."""
    ctx.find_root().meta[_RESULT] = (result, contexts_behind)


def _command(ctx: Any) -> str | None:
    if ctx is None or not hasattr(ctx, "command_path"):
        return None
    if getattr(ctx, "invoked_subcommand", None):
        return None  # a group's callback on its way to a subcommand (``patterns list``)
    names = []
    while ctx.parent is not None:  # the root's name depends on how it was started
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    path = " ".join(reversed(names))
    return path if path in JOB_COMMANDS else None


def _grain(ctx: Any) -> str:
    from fulcrum_sync.domain import FulcrumError, Grain

    value = ctx.params.get("grain")
    try:
        return Grain.parse(value).value if value else "all"
    except FulcrumError:
        return "invalid"


def _url(ctx: Any) -> tuple[str, float] | None:
    from fulcrum_sync.cli._deps import deps_of
    from fulcrum_sync.domain import FulcrumError

    try:
        settings = deps_of(ctx).get_settings()
    except FulcrumError:
        return None  # bad settings: the command says so itself
    url = settings.pushgateway_url.strip()
    return (url, settings.pushgateway_timeout) if url else None


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into exit 143 (so the push still happens) unless something handles it."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        raise SystemExit(EXIT_TERMINATED)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def pushing(ctx: Any) -> Iterator[None]:
    """Push the job's metrics however the block ends (a no-op for other commands)."""
    command = _command(ctx)
    if command is None:
        yield
        return
    started = time.monotonic()
    code = 1
    try:
        with _exit_on_sigterm():
            yield
        code = 0
    except typer.Exit as exc:
        code = exc.exit_code
        raise
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        raise
    except KeyboardInterrupt:
        code = EXIT_TERMINATED
        raise
    finally:
        _push(ctx, command, code, time.monotonic() - started)


def _push(ctx: Any, command: str, code: int, seconds: float) -> None:
    target = _url(ctx)
    if target is None:
        return
    from fulcrum_sync.metrics import JobRun, figures_of, push

    result, behind = ctx.find_root().meta.get(_RESULT, (None, None))
    figures = figures_of(result)
    figures.contexts_behind = behind
    run = JobRun(command, _grain(ctx), code, seconds, figures)
    push(target[0], run, timeout=target[1])
