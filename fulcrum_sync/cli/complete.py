"""Shell completion of option values (``fulcrum-sync --install-completion`` sets it up).

Fixed choices (grains, log formats, ``--what``, outcomes, pattern names) complete from the
code; tenants, metrics, contexts and the commands with a run recorded (``runs --command``)
from the state database when it is reachable, and to nothing when it is not. A completion
never prints, logs or raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from fulcrum_sync.domain import Grain

if TYPE_CHECKING:
    from fulcrum_sync.services.operate.completion import StoredNames

LOG_FORMATS = ("auto", "rich", "json")
STATUS_FORMATS = ("table", "json", "openmetrics")


def _starting(values: Iterable[str], incomplete: str) -> list[str]:
    return [v for v in values if v.startswith(incomplete)]


def complete_grains(incomplete: str) -> list[str]:
    return _starting((g.value for g in Grain), incomplete)


def complete_log_formats(incomplete: str) -> list[str]:
    return _starting(LOG_FORMATS, incomplete)


def complete_status_formats(incomplete: str) -> list[str]:
    return _starting(STATUS_FORMATS, incomplete)


def complete_what(incomplete: str) -> list[str]:
    """``--what`` takes a comma-separated list: complete its last item."""
    from fulcrum_sync.domain import WHAT_CHOICES

    done, _, last = incomplete.rpartition(",")
    head = f"{done}," if done else ""
    return [head + w for w in _starting(WHAT_CHOICES, last)]


def complete_outcomes(incomplete: str) -> list[str]:
    from fulcrum_sync.domain import RUN_OUTCOMES

    return _starting(RUN_OUTCOMES, incomplete)


def complete_patterns(incomplete: str) -> list[str]:
    from fulcrum_sync.patterns.registry import REGISTRY

    return _starting(sorted(REGISTRY), incomplete)


def _stored(pick: Callable[[StoredNames], list[str]]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        try:
            from fulcrum_sync.config import load_settings
            from fulcrum_sync.services.operate.completion import stored_names

            names = stored_names(load_settings())
        except Exception:  # a completion never fails: bad settings complete to nothing
            return []
        return _starting(pick(names), incomplete)

    return complete


complete_tenants = _stored(lambda n: n.tenants)
complete_metrics = _stored(lambda n: n.metrics)
complete_contexts = _stored(lambda n: n.contexts)
complete_commands = _stored(lambda n: n.commands)  # those with a run recorded
