"""The root command group: what every command gets without declaring it.

- ``--log-format`` is declared once, on the root; given after a command
  (``fulcrum-sync sync --grain day --log-format json``, as the README documents) it is moved
  in front of the command before parsing, so every command accepts it.
- Help pages show no metavar for a flag (``--force``, not ``--force <bool>``, Typer's
  completion options included), and a positional argument by its metavar alone
  (``TENANT::METRIC``, not ``context <str>``; ``[OPTIONS] FILE`` in the usage line, not
  ``{file}``): the tree of commands is tidied once, here, so commands added later get the
  same (tests/cli/test_help_metavars.py fails on a bare ``<type>`` or a lower-case name).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

LOG_FORMAT = "--log-format"
LOG_FORMAT_NOTE = (
    "Global options work here too: --log-format [auto|rich|json] before or after the "
    "command; --verbose before it."
)


def hoist_log_format(args: list[str]) -> list[str]:
    """``args`` with every ``--log-format X`` / ``--log-format=X`` moved to the front.

    Nothing after ``--`` moves; a ``--log-format`` without a value stays where it is (the
    parser then says what is missing).
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg.startswith(LOG_FORMAT + "="):
            front.append(arg)
        elif arg == LOG_FORMAT and i + 1 < len(args):
            front += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class NamedArgument(TyperArgument):
    """A positional argument shown by its metavar: ``TENANT::METRIC`` in its row (no type
    beside it) and in the usage line, ``[RUN_ID]`` when optional."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.metavar else super().display_type_rich(ctx)

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"


class RootGroup(TyperGroup):
    """``fulcrum-sync`` itself: hoists ``--log-format`` and tidies every help page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tidied = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: Typer's click Context
        if not self._tidied:  # here, not in __init__: Typer adds its completion options later
            for command in _walk(self):
                _tidy(command)
            self._tidied = True
        return super().parse_args(ctx, hoist_log_format(args))


def _walk(command: Any) -> Iterator[Any]:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk(sub)


def _tidy(command: Any) -> None:
    """No ``<bool>`` after a flag (``--help`` included); a command's help ends by saying
    the global options work there too."""
    if not getattr(command, "commands", None) and LOG_FORMAT_NOTE not in (command.epilog or ""):
        command.epilog = "\n\n".join(filter(None, [command.epilog, LOG_FORMAT_NOTE]))
    params = list(command.params)
    help_option = command.get_help_option(typer.Context(command))
    if help_option is not None:
        params.append(help_option)
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif type(param) is TyperArgument and param.metavar:
            param.__class__ = NamedArgument  # same fields; only how help shows it differs
