"""Analysis patterns: pure functions from a context's series to typed results, and their registry.

The patterns service builds a ``PatternInput`` per context (and per dimension for patterns
that need one), looks the pattern up with ``get_pattern`` and calls ``run_pattern``, which
never raises. This package imports neither the store nor the CLI.
"""

from __future__ import annotations

from fulcrum_sync.patterns.base import (
    INSUFFICIENT_DATA,
    InsufficientDataError,
    PatternInput,
    PatternOutcome,
    PatternResult,
    PatternSettings,
)
from fulcrum_sync.patterns.registry import (
    REGISTRY,
    PatternSpec,
    get_pattern,
    list_patterns,
    run_pattern,
    validate_pattern_settings,
)

__all__ = [
    "INSUFFICIENT_DATA",
    "REGISTRY",
    "InsufficientDataError",
    "PatternInput",
    "PatternOutcome",
    "PatternResult",
    "PatternSettings",
    "PatternSpec",
    "get_pattern",
    "list_patterns",
    "run_pattern",
    "validate_pattern_settings",
]
