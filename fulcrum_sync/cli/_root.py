"""The root command group: what every command gets without declaring it.

- **Commands load when they run.** The root names every command and the module that holds
  it (``COMMANDS``); a command's module is imported, and its click command built, only when
  the command is looked up: ``fulcrum-sync sync`` imports ``cli/sync.py`` and nothing of the
  other commands (``--help`` and shell completion look up every one, as they list them).
- ``--log-format`` is declared once, on the root; given after a command
  (``fulcrum-sync sync --grain day --log-format json``, as the README documents) it is moved
  in front of the command before parsing, so every command accepts it.
- Help pages show no metavar for a flag (``--force``, not ``--force <bool>``, Typer's
  completion options included), and a positional argument by its metavar alone
  (``TENANT::METRIC``, not ``context <str>``; ``[OPTIONS] FILE`` in the usage line, not
  ``{file}``): each command is tidied as it is loaded (the root when it first parses), so
  commands added later get the same (tests/cli/test_help_metavars.py fails on a bare
  ``<type>`` or a lower-case name).
"""

from __future__ import annotations

from collections.abc import Iterator
from difflib import get_close_matches
from typing import Any

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.models import CommandInfo, TyperInfo

LOG_FORMAT = "--log-format"
LOG_FORMAT_NOTE = (
    "Global options work here too: --log-format [auto|rich|json] before or after the "
    "command; --verbose before it."
)

#: Every command of the root, in the order ``--help`` lists them: name → (module under
#: ``fulcrum_sync.cli``, attribute). The attribute is a command function, or a ``typer.Typer``
#: for a group of subcommands.
COMMANDS: dict[str, tuple[str, str]] = {
    "discover": ("discover", "discover"),
    "sync": ("sync", "sync"),
    "status": ("reports", "status"),
    "doctor": ("doctor", "doctor"),
    "cache-load": ("cache_load", "cache_load"),
    "backfill": ("backfill", "backfill"),
    "verify": ("verify", "verify"),
    "catalog": ("admin", "catalog_app"),
    "db": ("admin", "db_app"),
    "runs": ("reports", "runs_app"),
    "state": ("state", "state_app"),
    "series": ("series", "series_app"),
    "patterns": ("patterns", "patterns_app"),
}


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
    """``fulcrum-sync`` itself: loads commands when looked up, hoists ``--log-format`` and
    tidies every help page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.suggest_all = self.suggest_commands  # resolve_command turns Typer's own off
        self._tidied = False

    def list_commands(self, ctx: Any) -> list[str]:  # ctx: Typer's click Context
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = _load(cmd_name, self)
            for each in _walk(command):
                _tidy(each)
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Typer's, with its "Did you mean" drawn from every command, not the loaded ones."""
        self.suggest_commands = False
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if self.suggest_all and matches:
                names = ", ".join(f"{m!r}" for m in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {names}?"
            raise
        finally:
            self.suggest_commands = self.suggest_all

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: Typer's click Context
        if not self._tidied:  # here, not in __init__: Typer adds its completion options later
            for command in _walk(self):
                _tidy(command)
            self._tidied = True
        return super().parse_args(ctx, hoist_log_format(args))


def _load(name: str, root: RootGroup) -> Any:
    """Import the module of command ``name`` and build its click command as Typer builds
    the commands registered on the root's app (``app.command()``, ``app.add_typer``)."""
    module, attribute = COMMANDS[name]
    # __import__, not importlib.import_module: ``python -X importtime`` lists this one
    target = getattr(__import__(f"fulcrum_sync.cli.{module}", fromlist=[attribute]), attribute)
    # Typer's default; it only marks frames for its pretty tracebacks, which are off.
    short = True
    if isinstance(target, typer.Typer):
        return typer.main.get_group_from_info(
            TyperInfo(target, name=name),
            pretty_exceptions_short=short,
            rich_markup_mode=root.rich_markup_mode,
            suggest_commands=root.suggest_all,
        )
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=target),
        pretty_exceptions_short=short,
        rich_markup_mode=root.rich_markup_mode,
    )


def _walk(command: Any) -> Iterator[Any]:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk(sub)


def _tidy(command: Any) -> None:
    """No ``<bool>`` after a flag (``--help`` included); a command's help ends by saying
    the global options work there too."""
    leaf = not isinstance(command, RootGroup) and not getattr(command, "commands", None)
    if leaf and LOG_FORMAT_NOTE not in (command.epilog or ""):
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
