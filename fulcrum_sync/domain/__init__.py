"""The domain: grains and periods, contexts and run keys, requests and results, errors.

It imports nothing of fulcrum-sync but itself, so every layer can use it. The exception tree
(drawn in ``errors.py``)::

    FulcrumError
    ├── InputError          bad usage or configuration (exit 2)
    │   ├── RefusedError    the source refused our credentials or address (exit 2)
    │   ├── TenantRefusedError  one tenant's own Cube refused it: its contexts fail
    │   └── CatalogError    a catalog that does not validate (every problem listed)
    └── DependencyError     a dependency failed (exit 3 when nothing could be done)
        ├── SourceError     the semantic layer (Cube) or the demo generator
        │   ├── QueryRejectedError  one query refused: that series fails (exit 1)
        │   └── SourceDownError     its breaker is open: the run stops
        ├── StoreError      the state database
        └── SinkError       the cache (Snowflake or local)

Each name loads with its module when it is first used (``__getattr__`` below): a command
imports the parts of the domain it runs, not all of them (the everything-done ``sync`` that
cron starts every day should cost little; issue 26).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # at run time each name loads with its module, when first used
    from fulcrum_sync.domain.backfill import BackfillPlan, BackfillRequest, BackfillResult
    from fulcrum_sync.domain.catch_up import (
        CatchUpRest,
        backfill_command,
        cache_load_command,
        catch_up_command,
        missed_periods,
        patterns_command,
        rest_of,
        sync_command,
    )
    from fulcrum_sync.domain.contexts import (
        MetricContext,
        PatternContext,
        pattern_run_key,
        sync_run_key,
    )
    from fulcrum_sync.domain.errors import (
        CatalogError,
        DependencyError,
        FulcrumError,
        InputError,
        QueryRejectedError,
        RefusedError,
        SinkError,
        SourceDownError,
        SourceError,
        StopRequested,
        StoreBusyError,
        StoreError,
        TenantRefusedError,
        endpoint_of,
        is_outage,
    )
    from fulcrum_sync.domain.grains import (
        DEFAULT_LOOKBACK,
        GRAIN_ALIASES,
        GRAINS,
        Grain,
        GrainRules,
        PatternWindows,
        SyncType,
        grain_names,
        period_forms,
    )
    from fulcrum_sync.domain.health import Headline, decide_health
    from fulcrum_sync.domain.outcomes import (
        CLAIMED_ELSEWHERE,
        FAILED_CONTEXTS,
        FAILED_KEYS,
        FAILED_OUTCOMES,
        FINISHED_OUTCOMES,
        UNFINISHED_KEYS,
        ContextStatus,
        Health,
        KeyStatus,
        PatternStatus,
        RunOutcome,
        SeriesStatus,
        SkipReason,
        derive_outcome,
    )
    from fulcrum_sync.domain.periods import (
        Window,
        check_history,
        check_not_after,
        check_period,
        compute_window,
        format_period,
        iter_periods,
        last_complete_period,
        parse_period,
        parse_span,
        period_end,
        period_examples,
        period_label,
        period_start,
        shift_period,
    )
    from fulcrum_sync.domain.reports import (
        RUN_OUTCOMES,
        CacheLoadResult,
        CatalogSaveResult,
        ContextCacheResult,
        ContextChanges,
        DiscoverResult,
        Freshness,
        IsolationUnknown,
        MetricContextChange,
        NotIsolated,
        Problem,
        RevisionResult,
        RunDetail,
        RunsQuery,
        StatusReport,
        UpgradeResult,
    )
    from fulcrum_sync.domain.results import (
        ContextResult,
        ContextTally,
        PatternRunResult,
        PatternsRequest,
        PatternsRunResult,
        SeriesResult,
        SkipCounts,
        SyncRequest,
        SyncRunResult,
    )
    from fulcrum_sync.domain.source_stats import SourceStats
    from fulcrum_sync.domain.state import (
        PART_TABLES,
        RESET_WHATS,
        WHAT_CHOICES,
        CacheState,
        ContextState,
        PatternState,
        ResetRequest,
        ResetResult,
        RunKeyCount,
        Scope,
        SeriesRequest,
        SeriesState,
        SeriesValues,
        StateReport,
        parse_what,
        period_range,
    )

#: The names each module (under ``fulcrum_sync.domain``) gives the package.
HOMES: dict[str, str] = {
    "backfill": "BackfillPlan BackfillRequest BackfillResult",
    "catch_up": (
        "CatchUpRest backfill_command cache_load_command catch_up_command missed_periods "
        "patterns_command rest_of sync_command"
    ),
    "contexts": "MetricContext PatternContext pattern_run_key sync_run_key",
    "errors": (
        "CatalogError DependencyError FulcrumError InputError QueryRejectedError "
        "RefusedError SinkError SourceDownError SourceError StopRequested StoreBusyError "
        "StoreError TenantRefusedError endpoint_of is_outage"
    ),
    "grains": (
        "DEFAULT_LOOKBACK GRAIN_ALIASES GRAINS Grain GrainRules PatternWindows SyncType "
        "grain_names period_forms"
    ),
    "health": "Headline decide_health",
    "outcomes": (
        "CLAIMED_ELSEWHERE FAILED_CONTEXTS FAILED_KEYS FAILED_OUTCOMES FINISHED_OUTCOMES "
        "UNFINISHED_KEYS ContextStatus Health KeyStatus PatternStatus RunOutcome SeriesStatus "
        "SkipReason derive_outcome"
    ),
    "periods": (
        "Window check_history check_not_after check_period compute_window format_period "
        "iter_periods last_complete_period parse_period parse_span period_end "
        "period_examples period_label period_start shift_period"
    ),
    "reports": (
        "RUN_OUTCOMES CacheLoadResult CatalogSaveResult ContextCacheResult ContextChanges "
        "DiscoverResult Freshness IsolationUnknown MetricContextChange NotIsolated Problem "
        "RevisionResult RunDetail RunsQuery StatusReport UpgradeResult"
    ),
    "results": (
        "ContextResult ContextTally PatternRunResult PatternsRequest PatternsRunResult "
        "SeriesResult SkipCounts SyncRequest SyncRunResult"
    ),
    "source_stats": "SourceStats",
    "state": (
        "PART_TABLES RESET_WHATS WHAT_CHOICES CacheState ContextState PatternState "
        "ResetRequest ResetResult RunKeyCount Scope SeriesRequest SeriesState SeriesValues "
        "StateReport parse_what period_range"
    ),
}
_HOME_OF = {name: module for module, names in HOMES.items() for name in names.split()}

__all__ = [
    "CLAIMED_ELSEWHERE",
    "DEFAULT_LOOKBACK",
    "FAILED_CONTEXTS",
    "FAILED_KEYS",
    "FAILED_OUTCOMES",
    "FINISHED_OUTCOMES",
    "GRAINS",
    "GRAIN_ALIASES",
    "PART_TABLES",
    "RESET_WHATS",
    "RUN_OUTCOMES",
    "UNFINISHED_KEYS",
    "WHAT_CHOICES",
    "BackfillPlan",
    "BackfillRequest",
    "BackfillResult",
    "CacheLoadResult",
    "CacheState",
    "CatalogError",
    "CatalogSaveResult",
    "CatchUpRest",
    "ContextCacheResult",
    "ContextChanges",
    "ContextResult",
    "ContextState",
    "ContextStatus",
    "ContextTally",
    "DependencyError",
    "DiscoverResult",
    "Freshness",
    "FulcrumError",
    "Grain",
    "GrainRules",
    "Headline",
    "Health",
    "InputError",
    "IsolationUnknown",
    "KeyStatus",
    "MetricContext",
    "MetricContextChange",
    "NotIsolated",
    "PatternContext",
    "PatternRunResult",
    "PatternState",
    "PatternStatus",
    "PatternWindows",
    "PatternsRequest",
    "PatternsRunResult",
    "Problem",
    "QueryRejectedError",
    "RefusedError",
    "ResetRequest",
    "ResetResult",
    "RevisionResult",
    "RunDetail",
    "RunKeyCount",
    "RunOutcome",
    "RunsQuery",
    "Scope",
    "SeriesRequest",
    "SeriesResult",
    "SeriesState",
    "SeriesStatus",
    "SeriesValues",
    "SinkError",
    "SkipCounts",
    "SkipReason",
    "SourceDownError",
    "SourceError",
    "SourceStats",
    "StateReport",
    "StatusReport",
    "StopRequested",
    "StoreBusyError",
    "StoreError",
    "SyncRequest",
    "SyncRunResult",
    "SyncType",
    "TenantRefusedError",
    "UpgradeResult",
    "Window",
    "backfill_command",
    "cache_load_command",
    "catch_up_command",
    "check_history",
    "check_not_after",
    "check_period",
    "compute_window",
    "decide_health",
    "derive_outcome",
    "endpoint_of",
    "format_period",
    "grain_names",
    "is_outage",
    "iter_periods",
    "last_complete_period",
    "missed_periods",
    "parse_period",
    "parse_span",
    "parse_what",
    "pattern_run_key",
    "patterns_command",
    "period_end",
    "period_examples",
    "period_forms",
    "period_label",
    "period_range",
    "period_start",
    "rest_of",
    "shift_period",
    "sync_command",
    "sync_run_key",
]


if not TYPE_CHECKING:  # mypy reads the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> object:
        """Import the module that holds ``name``; keep the name here for the next use."""
        module = _HOME_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        # __import__, not importlib.import_module: ``python -X importtime`` lists this one
        value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
