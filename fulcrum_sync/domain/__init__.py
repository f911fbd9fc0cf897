"""The domain: grains and periods, contexts and run keys, requests and results, errors.

It imports nothing of fulcrum-sync but itself, so every layer can use it. The exception tree
(drawn in ``errors.py``)::

    FulcrumError
    ├── InputError          bad usage or configuration (exit 2)
    │   ├── RefusedError    the source refused our credentials or address (exit 2)
    │   └── CatalogError    a catalog that does not validate (every problem listed)
    └── DependencyError     a dependency failed (exit 3 when nothing could be done)
        ├── SourceError     the semantic layer (Cube) or the demo generator
        │   ├── QueryRejectedError  one query refused: that series fails (exit 1)
        │   └── SourceDownError     its breaker is open: the run stops
        ├── StoreError      the state database
        └── SinkError       the cache (Snowflake or local)
"""

from fulcrum_sync.domain.backfill import BackfillPlan, BackfillRequest, BackfillResult
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
    StoreError,
    is_outage,
)
from fulcrum_sync.domain.periods import (
    DEFAULT_LOOKBACK,
    GRAIN_ALIASES,
    Grain,
    SyncType,
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
    period_start,
    shift_period,
)
from fulcrum_sync.domain.reports import (
    CacheLoadResult,
    CatalogSaveResult,
    ContextCacheResult,
    ContextChanges,
    DiscoverResult,
    Freshness,
    MetricContextChange,
    NotIsolated,
    RevisionResult,
    RunDetail,
    StatusReport,
    UpgradeResult,
)
from fulcrum_sync.domain.results import (
    ContextResult,
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

__all__ = [
    "DEFAULT_LOOKBACK",
    "GRAIN_ALIASES",
    "PART_TABLES",
    "RESET_WHATS",
    "WHAT_CHOICES",
    "BackfillPlan",
    "BackfillRequest",
    "BackfillResult",
    "CacheLoadResult",
    "CacheState",
    "CatalogError",
    "CatalogSaveResult",
    "ContextCacheResult",
    "ContextChanges",
    "ContextResult",
    "ContextState",
    "DependencyError",
    "DiscoverResult",
    "Freshness",
    "FulcrumError",
    "Grain",
    "InputError",
    "MetricContext",
    "MetricContextChange",
    "NotIsolated",
    "PatternContext",
    "PatternRunResult",
    "PatternState",
    "PatternsRequest",
    "PatternsRunResult",
    "QueryRejectedError",
    "RefusedError",
    "ResetRequest",
    "ResetResult",
    "RevisionResult",
    "RunDetail",
    "RunKeyCount",
    "Scope",
    "SeriesRequest",
    "SeriesResult",
    "SeriesState",
    "SeriesValues",
    "SinkError",
    "SkipCounts",
    "SourceDownError",
    "SourceError",
    "SourceStats",
    "StateReport",
    "StatusReport",
    "StoreError",
    "SyncRequest",
    "SyncRunResult",
    "SyncType",
    "UpgradeResult",
    "Window",
    "check_history",
    "check_not_after",
    "check_period",
    "compute_window",
    "format_period",
    "is_outage",
    "iter_periods",
    "last_complete_period",
    "parse_period",
    "parse_span",
    "parse_what",
    "pattern_run_key",
    "period_end",
    "period_range",
    "period_start",
    "shift_period",
    "sync_run_key",
]
