"""What ``status`` leads with: one headline per cause, and the health they add up to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fulcrum_sync.domain.outcomes import Health


@dataclass(frozen=True, slots=True)
class Headline:
    """One cause and what it costs, in one sentence, with the one command that fixes it.

    :param cause: ``outage``, ``refused``, ``failing``, ``never_synced``, ``behind``,
        ``patterns``, ``holes``, ``cache``, ``abandoned`` or ``last_run``.
    :param text: the sentence (``Cube at http://cube:4000 unreachable since 02:00 UTC: 312
        day contexts behind``).
    :param needs_person: True when no scheduled run fixes it by itself.
    :param note: what the next scheduled run does about it, or why a person must act.
    :param command: the command to run now (empty when there is nothing to run).
    :param contexts: the contexts concerned (``tenant::metric``), for ``--verbose``/JSON.
    """

    cause: str
    grain: str | None
    text: str
    needs_person: bool
    note: str
    command: str = ""
    endpoint: str | None = None
    since: datetime | None = None
    contexts: list[str] = field(default_factory=list)


def decide_health(headlines: Sequence[Headline]) -> Health:
    """``needs_attention`` if any headline needs a person, ``healing`` if there are only
    ones the next scheduled run fixes, else ``healthy``."""
    if any(h.needs_person for h in headlines):
        return Health.NEEDS_ATTENTION
    return Health.HEALING if headlines else Health.HEALTHY
