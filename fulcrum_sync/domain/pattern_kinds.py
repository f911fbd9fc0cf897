"""What the run keys need to know of each registered pattern, without importing it.

A pattern's key names its context, grain, period and, for a pattern that runs once per
dimension, the dimension. Making and checking keys (``services.jobs.keys``) needs only that,
so it reads this table instead of ``patterns.registry``, which imports pandas and numpy:
a run that finds every key done never pays for them. ``tests`` check the table against
the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from fulcrum_sync.domain.grains import coarser_grains
from fulcrum_sync.domain.periods import Grain


@dataclass(frozen=True, slots=True)
class PatternKind:
    """The shape of a pattern's run keys: per dimension or not, and the grains it runs at."""

    name: str
    needs_dimension: bool
    grains: frozenset[Grain] = frozenset(Grain)

    def supports(self, grain: Grain) -> bool:
        return grain in self.grains


PATTERN_KINDS: dict[str, PatternKind] = {
    kind.name: kind
    for kind in (
        PatternKind("performance_status", needs_dimension=False),
        PatternKind("historical_performance", needs_dimension=False),
        PatternKind("dimension_analysis", needs_dimension=True),
        PatternKind(  # a forecast needs a coarser span to forecast to: not at the coarsest
            "forecasting",
            needs_dimension=False,
            grains=frozenset(g for g in Grain if coarser_grains(g)),
        ),
        PatternKind("data_quality", needs_dimension=False),
    )
}
